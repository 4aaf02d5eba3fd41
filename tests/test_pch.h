// Precompiled header of the test binary: torch first, then Catch2 (see lighter_test.h).
#pragma once
#include "lighter_test.h"
