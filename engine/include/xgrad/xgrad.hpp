// Everything a model needs from the engine: tape, ops, gradcheck, thread setting.
#pragma once

#include "xgrad/gradcheck.hpp"
#include "xgrad/ops.hpp"
#include "xgrad/tape.hpp"
#include "xgrad/threads.hpp"
