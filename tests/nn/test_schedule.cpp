// Learning-rate schedules: values from their formulas, text round trips and errors.
#include <cmath>
#include <functional>
#include <string>

#include <doctest/doctest.h>

#include "message_of.hpp"

#include "xgrad/nn/schedule.hpp"

using namespace xgrad::nn;

TEST_CASE("constant schedule ignores epoch and step") {
  const Schedule s = Schedule::constant(0.01);
  CHECK(s(0, 0, 5) == 0.01);
  CHECK(s(7, 3, 5) == 0.01);
}

TEST_CASE("inverse time schedule is t0 over t plus t1 with t the global step") {
  // Report 000: t0 = t1 = 30 m with m = 5 minibatches → η(0) = 1, and at epoch 2,
  // step 3: t = 2·5 + 3 = 13, η = 150 / 163.
  const Schedule s = Schedule::inverse_time(150, 150);
  CHECK(s(0, 0, 5) == 1.0);
  CHECK(s(2, 3, 5) == doctest::Approx(150.0 / 163.0).epsilon(1e-15));
  const Schedule t = Schedule::inverse_time(5, 50);
  CHECK(t(0, 0, 10) == 0.1);
  CHECK(t(1, 0, 10) == doctest::Approx(5.0 / 60.0).epsilon(1e-15));
}

TEST_CASE("epoch decay schedule is report 003's eta0 over e m plus 1") {
  const Schedule s = Schedule::epoch_decay(0.1);
  CHECK(s(0, 0, 4) == 0.1);
  CHECK(s(0, 3, 4) == 0.1);  // constant within an epoch
  CHECK(s(1, 0, 4) == doctest::Approx(0.1 / 5.0).epsilon(1e-15));
  CHECK(s(3, 2, 4) == doctest::Approx(0.1 / 13.0).epsilon(1e-15));
}

TEST_CASE("step decay multiplies by drop every few epochs") {
  const Schedule s = Schedule::step(0.2, 0.5, 3);
  CHECK(s(0, 0, 1) == 0.2);
  CHECK(s(2, 9, 10) == 0.2);
  CHECK(s(3, 0, 10) == 0.1);
  CHECK(s(6, 0, 10) == 0.05);
  CHECK(s(8, 0, 10) == 0.05);
  // drop = 1 is allowed (the range is (0, 1]): a constant rate.
  CHECK(Schedule::step(0.2, 1.0, 1)(9, 0, 10) == 0.2);
}

TEST_CASE("exponential decay is eta0 gamma to the epoch") {
  const Schedule s = Schedule::exponential(0.1, 0.9);
  CHECK(s(0, 0, 3) == 0.1);
  CHECK(s(2, 1, 3) == doctest::Approx(0.081).epsilon(1e-14));
  CHECK(s(10, 0, 3) == doctest::Approx(0.1 * std::pow(0.9, 10)).epsilon(1e-14));
  // gamma = 1 is allowed (the range is (0, 1]): a constant rate.
  CHECK(Schedule::exponential(0.1, 1.0)(7, 0, 3) == 0.1);
}

TEST_CASE("schedules parse from text and round trip") {
  CHECK(Schedule::parse("0.05")(3, 0, 2) == 0.05);
  CHECK(Schedule::parse("constant:0.05").kind == ScheduleKind::Constant);
  const Schedule inv = Schedule::parse("inverse_time: 5, 50");
  CHECK(inv.kind == ScheduleKind::InverseTime);
  CHECK(inv.t0 == 5.0);
  CHECK(inv.t1 == 50.0);
  const Schedule st = Schedule::parse("step:0.2,0.5,3");
  CHECK(st.every == 3);
  CHECK(st.drop == 0.5);
  for (const char* text : {"constant:0.001", "inverse_time:5,50", "epoch_decay:0.1",
                           "step:0.2,0.5,3", "exponential:0.1,0.95"}) {
    const Schedule s = Schedule::parse(text);
    const Schedule r = Schedule::parse(s.to_string());
    CHECK(r.kind == s.kind);
    for (std::size_t e = 0; e < 8; ++e)
      CHECK(r(e, 1, 4) == s(e, 1, 4));
  }
}

TEST_CASE("schedule errors name the text and the value") {
  CHECK(message_of([] { Schedule::parse("cosine:0.1"); }).find("'cosine:0.1'") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::parse("step:0.1,0.5"); }).find("step:ETA0,DROP,EVERY") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::parse("constant:abc"); }).find("'abc'") != std::string::npos);
  CHECK(message_of([] { Schedule::parse("constant:1e999"); }) ==
        "schedule 'constant:1e999': '1e999' is out of the range of a double");
  CHECK(Schedule::parse("constant:1e-310")(0, 0, 1) == 1e-310);  // a subnormal is a number
  CHECK(message_of([] { Schedule::parse("step:0.1,1e-400x,1"); }).find("is not a number") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::parse("constant:-0.1"); }).find("eta0 = -0.1") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::parse("exponential:0.1,1.5"); }).find("gamma = 1.5") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::parse("step:0.1,0.5,2.5"); }).find("EVERY = 2.5") !=
        std::string::npos);
  // Whole but beyond size_t (or infinite): the cast to size_t is undefined, and gave
  // "every = 0 epochs". Up to 2^53 a double holds every whole number exactly.
  CHECK(message_of([] { Schedule::parse("step:0.1,0.5,1e20"); }) ==
        "schedule 'step:0.1,0.5,1e20': EVERY = 1e20 is not a whole number of epochs from 1 to "
        "2^53");
  CHECK(message_of([] { Schedule::parse("step:0.1,0.5,inf"); }).find("EVERY = inf is not") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::parse("step:0.1,0.5,1e16"); }).find("EVERY = 1e16 is not") !=
        std::string::npos);
  CHECK(Schedule::parse("step:0.1,0.5,9007199254740992").every == 9007199254740992ull);  // 2^53
  CHECK(message_of([] { Schedule::parse("inverse_time:0,10"); }).find("t0 = 0") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::constant(0.1)(0, 0, 0); }).find("0 steps") != std::string::npos);
  // A trailing comma is an empty fourth value, not ignored; a negative bare rate is a rate
  // that is not positive, not an unknown kind; hexadecimal is not a number here.
  CHECK(message_of([] { Schedule::parse("step:0.1,0.5,10,"); }) ==
        "schedule 'step:0.1,0.5,10,': expected step:ETA0,DROP,EVERY, got 4 value(s)");
  CHECK(message_of([] { Schedule::parse("-0.01"); }).find("eta0 = -0.01 must be positive") !=
        std::string::npos);
  CHECK(message_of([] { Schedule::parse("constant:0x1"); }) ==
        "schedule 'constant:0x1': '0x1' is not a number");
}
