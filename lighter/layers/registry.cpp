#include "lighter/layers/registry.h"

#include "lighter/layers/attention.h"
#include "lighter/layers/convolution.h"
#include "lighter/layers/core_layers.h"
#include "lighter/layers/embedding.h"
#include "lighter/layers/merge.h"
#include "lighter/layers/normalization.h"
#include "lighter/layers/pooling.h"
#include "lighter/layers/preprocessing.h"
#include "lighter/layers/recurrent.h"
#include "lighter/layers/regularization.h"
#include "lighter/layers/reshaping.h"
#include "lighter/layers/transformer.h"

namespace lighter::layers {

namespace {
template <class T>
void add(Registry<LayerPtr, ConfigReader&>& r, const std::string& name) {
  r.add(name, [](ConfigReader& c) -> LayerPtr { return T::from_config(c); });
}
}  // namespace

Registry<LayerPtr, ConfigReader&>& registry() {
  static Registry<LayerPtr, ConfigReader&> r = [] {
    Registry<LayerPtr, ConfigReader&> reg("layer");
    add<InputLayerImpl>(reg, "InputLayer");
    add<DenseImpl>(reg, "Dense");
    add<ActivationImpl>(reg, "Activation");
    add<DropoutImpl>(reg, "Dropout");
    add<FlattenImpl>(reg, "Flatten");
    add<NormalizationImpl>(reg, "Normalization");
    add<RescalingImpl>(reg, "Rescaling");
    add<ResizingImpl>(reg, "Resizing");
    add<BatchNormalizationImpl>(reg, "BatchNormalization");
    add<LayerNormalizationImpl>(reg, "LayerNormalization");
    add<GroupNormalizationImpl>(reg, "GroupNormalization");
    add<UnitNormalizationImpl>(reg, "UnitNormalization");
    add<ReshapeImpl>(reg, "Reshape");
    add<PermuteImpl>(reg, "Permute");
    add<RepeatVectorImpl>(reg, "RepeatVector");
    add<UpSampling1DImpl>(reg, "UpSampling1D");
    add<UpSampling2DImpl>(reg, "UpSampling2D");
    add<ZeroPadding1DImpl>(reg, "ZeroPadding1D");
    add<ZeroPadding2DImpl>(reg, "ZeroPadding2D");
    add<Cropping1DImpl>(reg, "Cropping1D");
    add<Cropping2DImpl>(reg, "Cropping2D");
    add<SpatialDropout1DImpl>(reg, "SpatialDropout1D");
    add<SpatialDropout2DImpl>(reg, "SpatialDropout2D");
    add<GaussianNoiseImpl>(reg, "GaussianNoise");
    add<GaussianDropoutImpl>(reg, "GaussianDropout");
    add<AlphaDropoutImpl>(reg, "AlphaDropout");
    add<ActivityRegularizationImpl>(reg, "ActivityRegularization");
    // Convolutions and poolings; Keras 2's aliases make the same layer (which reports its Keras 3 name).
    add<Conv1DImpl>(reg, "Conv1D");
    add<Conv2DImpl>(reg, "Conv2D");
    add<Conv3DImpl>(reg, "Conv3D");
    add<Conv1DTransposeImpl>(reg, "Conv1DTranspose");
    add<Conv2DTransposeImpl>(reg, "Conv2DTranspose");
    add<Conv3DTransposeImpl>(reg, "Conv3DTranspose");
    add<DepthwiseConv1DImpl>(reg, "DepthwiseConv1D");
    add<DepthwiseConv2DImpl>(reg, "DepthwiseConv2D");
    add<SeparableConv1DImpl>(reg, "SeparableConv1D");
    add<SeparableConv2DImpl>(reg, "SeparableConv2D");
    add<MaxPooling1DImpl>(reg, "MaxPooling1D");
    add<MaxPooling2DImpl>(reg, "MaxPooling2D");
    add<MaxPooling3DImpl>(reg, "MaxPooling3D");
    add<AveragePooling1DImpl>(reg, "AveragePooling1D");
    add<AveragePooling2DImpl>(reg, "AveragePooling2D");
    add<AveragePooling3DImpl>(reg, "AveragePooling3D");
    add<GlobalMaxPooling1DImpl>(reg, "GlobalMaxPooling1D");
    add<GlobalMaxPooling2DImpl>(reg, "GlobalMaxPooling2D");
    add<GlobalMaxPooling3DImpl>(reg, "GlobalMaxPooling3D");
    add<GlobalAveragePooling1DImpl>(reg, "GlobalAveragePooling1D");
    add<GlobalAveragePooling2DImpl>(reg, "GlobalAveragePooling2D");
    add<GlobalAveragePooling3DImpl>(reg, "GlobalAveragePooling3D");
    // Sequences.
    add<EmbeddingImpl>(reg, "Embedding");
    add<MaskingImpl>(reg, "Masking");
    add<SimpleRNNImpl>(reg, "SimpleRNN");
    add<LSTMImpl>(reg, "LSTM");
    add<GRUImpl>(reg, "GRU");
    add<BidirectionalImpl>(reg, "Bidirectional");
    add<TimeDistributedImpl>(reg, "TimeDistributed");
    add<AddImpl>(reg, "Add");
    add<SubtractImpl>(reg, "Subtract");
    add<MultiplyImpl>(reg, "Multiply");
    add<AverageImpl>(reg, "Average");
    add<MaximumImpl>(reg, "Maximum");
    add<MinimumImpl>(reg, "Minimum");
    add<ConcatenateImpl>(reg, "Concatenate");
    add<DotImpl>(reg, "Dot");
    add<MultiHeadAttentionImpl>(reg, "MultiHeadAttention");
    add<AttentionImpl>(reg, "Attention");
    reg.add("AdditiveAttention", [](ConfigReader& c) -> LayerPtr { return AttentionImpl::additive_from_config(c); });
    add<PositionEmbeddingImpl>(reg, "PositionEmbedding");
    add<SinePositionEncodingImpl>(reg, "SinePositionEncoding");
    add<TokenAndPositionEmbeddingImpl>(reg, "TokenAndPositionEmbedding");
    add<TransformerEncoderImpl>(reg, "TransformerEncoder");
    add<TransformerDecoderImpl>(reg, "TransformerDecoder");
    reg.alias("Convolution1D", "Conv1D", /*listed=*/false);
    reg.alias("Convolution2D", "Conv2D", /*listed=*/false);
    reg.alias("Convolution3D", "Conv3D", /*listed=*/false);
    reg.alias("Convolution1DTranspose", "Conv1DTranspose", /*listed=*/false);
    reg.alias("Convolution2DTranspose", "Conv2DTranspose", /*listed=*/false);
    reg.alias("Convolution3DTranspose", "Conv3DTranspose", /*listed=*/false);
    reg.alias("SeparableConvolution1D", "SeparableConv1D", /*listed=*/false);
    reg.alias("SeparableConvolution2D", "SeparableConv2D", /*listed=*/false);
    reg.alias("MaxPool1D", "MaxPooling1D", /*listed=*/false);
    reg.alias("MaxPool2D", "MaxPooling2D", /*listed=*/false);
    reg.alias("MaxPool3D", "MaxPooling3D", /*listed=*/false);
    reg.alias("AvgPool1D", "AveragePooling1D", /*listed=*/false);
    reg.alias("AvgPool2D", "AveragePooling2D", /*listed=*/false);
    reg.alias("AvgPool3D", "AveragePooling3D", /*listed=*/false);
    reg.alias("GlobalMaxPool1D", "GlobalMaxPooling1D", /*listed=*/false);
    reg.alias("GlobalMaxPool2D", "GlobalMaxPooling2D", /*listed=*/false);
    reg.alias("GlobalMaxPool3D", "GlobalMaxPooling3D", /*listed=*/false);
    reg.alias("GlobalAvgPool1D", "GlobalAveragePooling1D", /*listed=*/false);
    reg.alias("GlobalAvgPool2D", "GlobalAveragePooling2D", /*listed=*/false);
    reg.alias("GlobalAvgPool3D", "GlobalAveragePooling3D", /*listed=*/false);
    return reg;
  }();
  return r;
}

LayerPtr from_json(const nlohmann::json& spec, const std::string& path) {
  if (!spec.is_object()) throw ConfigError(path, "expected a layer {\"class_name\": ..., \"config\": {...}}, got " + describe(spec));
  // Keras 3 adds build_config; functional models add name and inbound_nodes beside the config.
  ClassSpec s = read_class_spec(spec, path, "layer", {"build_config", "name", "inbound_nodes"});
  ConfigReader config(s.config, s.config_path);
  LayerPtr layer = registry().create(s.class_name, s.name_path, config);
  config.finish();
  return layer;
}

nlohmann::json to_json(const LayerImpl& layer) {
  return {{"class_name", layer.class_name()}, {"config", layer.get_config()}};
}

}  // namespace lighter::layers
