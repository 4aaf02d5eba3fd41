#include "lighter_test.h"

#include <cstdlib>
#include <fstream>
#include <set>

#include "lighter/data/csv.h"
#include "lighter/data/dataset.h"

using lighter::DataError;
using lighter::data::BatchIterator;
using lighter::data::CsvOptions;
using lighter::data::read_csv;
using lighter::data::TargetKind;
using lighter::data::TensorDataset;

namespace {

/// Writes `text` to `name` in a fresh folder for `test` and returns its path.
std::string write_csv(const std::string& test, const std::string& name, const std::string& text) {
  std::string path = lighter_test::temp_dir("csv_" + test) + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string data_file(const std::string& name) { return lighter_test::source_path("examples/data/" + name); }

/// Counts of each class id in y.
std::vector<int64_t> class_counts(const torch::Tensor& y, int64_t classes) {
  auto counts = torch::bincount(y, {}, classes);
  return std::vector<int64_t>(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
}

}  // namespace

TEST_CASE("iris CSV reads class names into ids", "[data]") {
  auto train = read_csv(data_file("iris_train.csv"), CsvOptions().target("species"));
  REQUIRE(train.x.sizes() == torch::IntArrayRef({120, 4}));
  REQUIRE(train.x.scalar_type() == torch::kFloat32);
  REQUIRE(train.x.is_contiguous());
  REQUIRE(train.y.scalar_type() == torch::kInt64);
  REQUIRE(train.y.sizes() == torch::IntArrayRef({120}));
  REQUIRE(train.classes == std::vector<std::string>{"setosa", "versicolor", "virginica"});
  REQUIRE(train.feature_names == std::vector<std::string>{"sepal_length", "sepal_width", "petal_length", "petal_width"});
  REQUIRE(train.target_name == "species");
  REQUIRE(train.is_classification());
  REQUIRE(class_counts(train.y, 3) == std::vector<int64_t>{40, 40, 40});
  REQUIRE(torch::allclose(train.x[0], torch::tensor({5.1f, 3.5f, 1.4f, 0.2f})));
  REQUIRE(train.y[0].item<int64_t>() == 0);

  // The test split reuses the training mapping (as a saved model would).
  auto test = read_csv(data_file("iris_test.csv"), CsvOptions().target("species").classes(train.classes));
  REQUIRE(test.x.size(0) == 30);
  REQUIRE(test.classes == train.classes);
  REQUIRE(class_counts(test.y, 3) == std::vector<int64_t>{10, 10, 10});
  // The default target is the last column.
  REQUIRE(torch::equal(read_csv(data_file("iris_test.csv")).y, test.y));
}

TEST_CASE("digits CSV: integer labels stay numbers unless classification is asked for", "[data]") {
  auto train = read_csv(data_file("digits_train.csv"), CsvOptions().target("digit"));
  auto test = read_csv(data_file("digits_test.csv"), CsvOptions().target("digit"));
  // sklearn ships 1797 digits; every 5th row (359 of them) is in the test split.
  REQUIRE(train.x.sizes() == torch::IntArrayRef({1438, 64}));
  REQUIRE(test.x.sizes() == torch::IntArrayRef({359, 64}));
  REQUIRE(train.x.size(0) + test.x.size(0) == 1797);
  REQUIRE(train.y.scalar_type() == torch::kFloat32);
  REQUIRE(train.classes.empty());
  REQUIRE(train.feature_names.front() == "p0");
  REQUIRE(train.feature_names.back() == "p63");
  REQUIRE(train.x.max().item<float>() == 16.0f);

  auto ids = read_csv(data_file("digits_train.csv"), CsvOptions().target("digit").kind(TargetKind::Classification));
  REQUIRE(ids.y.scalar_type() == torch::kInt64);
  REQUIRE(ids.classes.size() == 10);
  REQUIRE(ids.classes[7] == "7");
  REQUIRE(torch::equal(ids.y.to(torch::kFloat32), train.y));  // integer labels are the ids themselves
}

TEST_CASE("diabetes CSV has a numeric target", "[data]") {
  auto train = read_csv(data_file("diabetes_train.csv"));
  auto test = read_csv(data_file("diabetes_test.csv"), CsvOptions().target("target"));
  REQUIRE(train.x.sizes() == torch::IntArrayRef({354, 10}));
  REQUIRE(test.x.sizes() == torch::IntArrayRef({88, 10}));
  REQUIRE(train.y.scalar_type() == torch::kFloat32);
  REQUIRE(train.classes.empty());
  REQUIRE_FALSE(train.is_classification());
  REQUIRE(train.target_name == "target");
  REQUIRE(train.feature_names ==
          std::vector<std::string>{"age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"});
  REQUIRE(torch::allclose(train.x[0], torch::tensor({59.f, 2.f, 32.1f, 101.f, 157.f, 93.2f, 38.f, 4.f, 4.8598f, 87.f})));
  REQUIRE(train.y[0].item<float>() == 151.0f);
}

TEST_CASE("CSV quoting, CRLF, BOM, blank lines and label order", "[data]") {
  std::string path = write_csv("quoting", "q.csv",
                               "\xEF\xBB\xBF"
                               "a,\"b,c\",label\r\n"
                               "1,2,\"x, y\"\r\n"
                               "\r\n"
                               " 3 , \"4\" ,z\r\n"
                               "5,6,\"say \"\"hi\"\"\"\r\n"
                               "7,\"8\",\"x, y\"");  // no newline at the end
  auto t = read_csv(path, CsvOptions().target("label"));
  REQUIRE(t.feature_names == std::vector<std::string>{"a", "b,c"});
  REQUIRE(torch::equal(t.x, torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f}).reshape({4, 2})));
  // Names are sorted, so the mapping does not depend on row order.
  REQUIRE(t.classes == std::vector<std::string>{"say \"hi\"", "x, y", "z"});
  REQUIRE(torch::equal(t.y, torch::tensor({1, 2, 0, 1}, torch::kInt64)));

  // A multi-line quoted label keeps later line numbers right.
  std::string multi = write_csv("multiline", "m.csv", "a,label\n1,\"two\nlines\"\n2,x\nbad,y\n");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(multi), "m.csv:5:1: expected a number in column 'a', got \"bad\"");

  auto plain = read_csv(write_csv("sorted", "s.csv", "f,c\n1,b\n2,a\n3,c\n4,a\n"));
  REQUIRE(plain.classes == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(torch::equal(plain.y, torch::tensor({1, 0, 2, 0}, torch::kInt64)));

  // Numeric labels that are not ids (negative) are classes in numeric order.
  auto signs = read_csv(write_csv("signs", "s.csv", "f,c\n1,1\n2,-1\n3,10\n"), CsvOptions().kind(TargetKind::Classification));
  REQUIRE(signs.classes == std::vector<std::string>{"-1", "1", "10"});
  REQUIRE(torch::equal(signs.y, torch::tensor({1, 0, 2}, torch::kInt64)));
}

TEST_CASE("CSV without header, other delimiter, target by index, no target", "[data]") {
  std::string path = write_csv("noheader", "n.csv", "0;1.5;2.5\n1;3.5;4.5\n");
  auto t = read_csv(path, CsvOptions().header(false).delimiter(';').target_index(0));
  REQUIRE(t.feature_names == std::vector<std::string>{"column_1", "column_2"});
  REQUIRE(t.target_name == "column_0");
  REQUIRE(torch::equal(t.y, torch::tensor({0.f, 1.f})));
  REQUIRE(torch::equal(t.x, torch::tensor({1.5f, 2.5f, 3.5f, 4.5f}).reshape({2, 2})));

  auto all = read_csv(path, CsvOptions().header(false).delimiter(';').kind(TargetKind::None));
  REQUIRE(all.x.sizes() == torch::IntArrayRef({2, 3}));
  REQUIRE_FALSE(all.y.defined());

  auto tab = read_csv(write_csv("tab", "t.tsv", "x\ty\n1\t2\n"), CsvOptions().delimiter('\t'));
  REQUIRE(tab.x.item<float>() == 1.0f);
}

TEST_CASE("CSV errors name file, line and column", "[data]") {
  LIGHTER_REQUIRE_THROWS_WITH(read_csv("/nonexistent/iris.csv"), "/nonexistent/iris.csv: cannot open file");
  REQUIRE_THROWS_AS(read_csv("/nonexistent/iris.csv"), DataError);
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(lighter_test::temp_dir("csv_dir")), "not a regular file");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("empty", "e.csv", "")), "e.csv: empty file");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("blank", "b.csv", "\r\n\n")), "b.csv: empty file");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("header_only", "h.csv", "a,b\n")), "h.csv: no data rows after the header");

  std::string abc = write_csv("abc", "t.csv", "a,b,label\n1,2,x\n");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(abc, CsvOptions().target("species")),
                              "t.csv: unknown target column 'species' (columns: a, b, label)");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(abc, CsvOptions().target_index(3)), "target_index 3 is out of range for 3 columns");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(abc, CsvOptions().kind(TargetKind::Regression)),
                              "t.csv:2:3: expected a number in target column 'label', got \"x\"");

  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("fields", "f.csv", "a,b,c\n1,2,3\n4,5,6,7\n")),
                              "f.csv:3: expected 3 fields (as in the header), got 4");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("fields2", "f.csv", "a,b,c\n1,2\n")),
                              "f.csv:2: expected 3 fields (as in the header), got 2");

  std::string iris = write_csv("iris", "iris.csv",
                               "sepal_length,sepal_width,petal_length,petal_width,species\n"
                               "5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n4.7,3.2,1.3,0.2,setosa\n"
                               "4.6,3.1,1.5,0.2,setosa\n5.0,3.6,1.4,0.2,setosa\n5.4,3.9,abc,0.4,setosa\n");
  try {
    read_csv(iris);
    FAIL("no error");
  } catch (const DataError& e) {
    REQUIRE(std::string(e.what()) == iris + ":7:3: expected a number in column 'petal_length', got \"abc\"");
    REQUIRE(e.file() == iris);
    REQUIRE(e.line() == 7);
    REQUIRE(e.column() == 3);
  }
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("missing", "m.csv", "a,b,y\n1,2,3\n1, ,3\n")),
                              "m.csv:3:2: missing value in column 'b'");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("partial", "p.csv", "a,y\n1.5x,3\n")),
                              "p.csv:2:1: expected a number in column 'a', got \"1.5x\"");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("nolabel", "l.csv", "a,y\n1,\n")), "l.csv:2:2: missing label in column 'y'");
  LIGHTER_REQUIRE_THROWS_WITH(read_csv(write_csv("quote", "q.csv", "a,y\n1,\"open\n")), "q.csv:2:2: unterminated quoted field");

  std::string flowers = write_csv("classes", "c.csv", "f,species\n1,setosa\n2,daisy\n");
  LIGHTER_REQUIRE_THROWS_WITH(
      read_csv(flowers, CsvOptions().classes({"setosa", "versicolor", "virginica"})),
      "c.csv:3:2: label \"daisy\" in column 'species' is not one of the known classes (setosa, versicolor, virginica)");
}

TEST_CASE("CSV numbers equal strtod's, fast path or not", "[data]") {
  for (const char* v : {"0.1", "5.1", "-2.25", "+3", "123456789012345", "1234567890123456789", "0.000000000000001",
                        "4.8598", "93.2", "1e-3", "-1.5E+2", "7.", ".5", "-0", "3.4e39"}) {
    INFO(v);
    auto t = lighter::data::parse_csv(std::string("a,y\n") + v + ",1\n", "v.csv");
    REQUIRE(t.x.item<float>() == static_cast<float>(std::strtod(v, nullptr)));
  }
  // Not finite decimal numbers: strtod would take nan, inf and hex, a data file's feature may not.
  for (const char* v : {"-", ".", "1.2.3", "--1", "1e", "1,5", "nan", "inf", "-Infinity", "0x10"}) {
    INFO(v);
    REQUIRE_THROWS_AS(lighter::data::parse_csv(std::string("a,y\n\"") + v + "\",1\n", "v.csv"), DataError);
  }
}

TEST_CASE("CSV reader handles 60k rows", "[data]") {
  std::string text = "a,b,c,d,e,f,g,h,label\n";
  for (int i = 0; i < 60000; ++i) {
    text += std::to_string(i) + ",0.5,1e-3,-2.25,3,4,5,6," + (i % 3 == 0 ? "cat" : i % 3 == 1 ? "dog" : "emu") + "\n";
  }
  auto t = lighter::data::parse_csv(text, "generated");
  REQUIRE(t.x.sizes() == torch::IntArrayRef({60000, 8}));
  REQUIRE(t.x[59999][0].item<float>() == 59999.0f);
  REQUIRE(class_counts(t.y, 3) == std::vector<int64_t>{20000, 20000, 20000});
}

TEST_CASE("TensorDataset checks sizes, selects and slices", "[data]") {
  auto x = torch::arange(20, torch::kFloat32).reshape({10, 2});
  auto y = torch::arange(10, torch::kInt64);
  TensorDataset d(x, y, torch::ones({10}));
  REQUIRE(d.size() == 10);
  REQUIRE_THROWS_AS(TensorDataset(x, torch::zeros({9})), lighter::ShapeError);
  auto s = d.select(torch::tensor({3, 1}, torch::kInt64));
  REQUIRE(torch::equal(s.y, torch::tensor({3, 1}, torch::kInt64)));
  REQUIRE(torch::equal(s.x[0], x[3]));
  REQUIRE(s.sample_weight.size(0) == 2);
  auto v = d.slice(2, 5);
  REQUIRE(v.size() == 3);
  REQUIRE(v.x.data_ptr() == x[2].data_ptr());  // a view, not a copy
  REQUIRE_THROWS_AS(d.slice(4, 11), lighter::ShapeError);
  TensorDataset only_x(x);
  REQUIRE_FALSE(only_x.select(torch::tensor({0}, torch::kInt64)).y.defined());
}

TEST_CASE("split_tail takes the last fraction, as Keras' validation_split", "[data]") {
  TensorDataset d(torch::arange(10, torch::kFloat32).unsqueeze(1), torch::arange(10, torch::kInt64));
  auto [train, val] = lighter::data::split_tail(d, 0.2);
  REQUIRE(train.size() == 8);
  REQUIRE(val.size() == 2);
  REQUIRE(torch::equal(val.y, torch::tensor({8, 9}, torch::kInt64)));
  REQUIRE(torch::equal(train.y, torch::arange(8, torch::kInt64)));

  TensorDataset iris(torch::zeros({150, 4}));
  auto parts = lighter::data::split_tail(iris, 0.2);
  REQUIRE(parts.first.size() == 120);
  REQUIRE(parts.second.size() == 30);
  // Keras: split_at = floor(N * (1 - fraction)).
  REQUIRE(lighter::data::split_tail(d, 0.25).first.size() == 7);

  auto none = lighter::data::split_tail(d, 0.0);
  REQUIRE(none.first.size() == 10);
  REQUIRE(none.second.empty());
  LIGHTER_REQUIRE_THROWS_WITH(lighter::data::split_tail(d, 1.0), "validation_split: expected a number in [0, 1)");
  LIGHTER_REQUIRE_THROWS_WITH(lighter::data::split_tail(TensorDataset(torch::zeros({1, 1})), 0.5), "too few");
}

TEST_CASE("BatchIterator in order: views, uneven last batch, epochs", "[data]") {
  TensorDataset d(torch::arange(10, torch::kFloat32).unsqueeze(1), torch::arange(10, torch::kInt64));
  BatchIterator it(d, 4);
  REQUIRE(it.num_batches() == 3);
  std::vector<int64_t> sizes, seen;
  TensorDataset batch;
  while (it.next(batch)) {
    sizes.push_back(batch.size());
    for (int64_t i = 0; i < batch.size(); ++i) seen.push_back(batch.y[i].item<int64_t>());
    REQUIRE(batch.x.data_ptr() == d.x[seen[seen.size() - batch.size()]].data_ptr());  // zero-copy
  }
  REQUIRE(sizes == std::vector<int64_t>{4, 4, 2});
  REQUIRE(seen == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  REQUIRE_FALSE(it.next(batch));
  it.reset();
  REQUIRE(it.position() == 0);
  REQUIRE(it.next(batch));
  REQUIRE(batch.y[0].item<int64_t>() == 0);

  BatchIterator whole(d, 32);
  REQUIRE(whole.num_batches() == 1);
  REQUIRE(whole.next(batch));
  REQUIRE(batch.size() == 10);
  LIGHTER_REQUIRE_THROWS_WITH(BatchIterator(d, 0), "batch_size");
}

TEST_CASE("BatchIterator shuffled: every index once per epoch, seeded or from the global RNG", "[data]") {
  const int64_t n = 103;
  auto x = torch::arange(n, torch::kFloat32).unsqueeze(1);
  TensorDataset d(x, torch::arange(n, torch::kInt64) * 2, torch::arange(n, torch::kFloat32));
  auto epoch_order = [&](BatchIterator& it) {
    it.reset();
    std::vector<int64_t> order;
    TensorDataset batch;
    while (it.next(batch)) {
      REQUIRE(batch.size() <= 10);
      // x, y and sample_weight stay aligned.
      REQUIRE(torch::equal(batch.y, batch.x.squeeze(1).to(torch::kInt64) * 2));
      REQUIRE(torch::equal(batch.sample_weight, batch.x.squeeze(1)));
      for (int64_t i = 0; i < batch.size(); ++i) order.push_back(batch.y[i].item<int64_t>() / 2);
    }
    return order;
  };
  BatchIterator a(d, 10, true, 7);
  auto first = epoch_order(a);
  auto second = epoch_order(a);
  REQUIRE(first.size() == n);
  REQUIRE(std::set<int64_t>(first.begin(), first.end()).size() == n);
  REQUIRE(*std::max_element(first.begin(), first.end()) == n - 1);
  std::vector<int64_t> sorted(first);
  std::sort(sorted.begin(), sorted.end());
  REQUIRE(first != sorted);   // shuffled
  REQUIRE(first != second);   // a new order each epoch

  BatchIterator b(d, 10, true, 7);
  REQUIRE(epoch_order(b) == first);  // the same seed gives the same sequence of epochs
  REQUIRE(epoch_order(b) == second);

  lighter::seed_everything(5);
  BatchIterator g1(d, 10, true);
  auto o1 = epoch_order(g1);
  lighter::seed_everything(5);
  BatchIterator g2(d, 10, true);
  REQUIRE(epoch_order(g2) == o1);
}

TEST_CASE("BatchIterator over CUDA tensors keeps batches on the device", "[data][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("CUDA not available; skipped");
    return;
  }
  TensorDataset d(torch::arange(50, torch::kFloat32).unsqueeze(1).cuda(), torch::arange(50, torch::kInt64).cuda());
  BatchIterator it(d, 16, true, 3);
  TensorDataset batch;
  int64_t total = 0;
  while (it.next(batch)) {
    REQUIRE(batch.x.is_cuda());
    REQUIRE(torch::equal(batch.y.to(torch::kFloat32), batch.x.squeeze(1)));
    total += batch.size();
  }
  REQUIRE(total == 50);
  REQUIRE(d.select(torch::tensor({4, 2}, torch::kInt64)).y.cpu().equal(torch::tensor({4, 2}, torch::kInt64)));
}
