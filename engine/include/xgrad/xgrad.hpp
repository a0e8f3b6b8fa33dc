// Everything a model needs from the engine: tape, ops, custom ops, gradcheck, thread
// setting.
#pragma once

#include "xgrad/custom_op.hpp"
#include "xgrad/gradcheck.hpp"
#include "xgrad/ops.hpp"
#include "xgrad/tape.hpp"
#include "xgrad/threads.hpp"
