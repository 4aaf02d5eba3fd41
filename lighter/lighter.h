#pragma once
/// Umbrella header: everything a Lighter user needs.
#include "lighter/core/device.h"
#include "lighter/core/error.h"
#include "lighter/core/json.h"
#include "lighter/core/logging.h"
#include "lighter/core/registry.h"
#include "lighter/core/shape.h"
