// Learning-rate schedules η(e, i): e the epoch (0-based), i the minibatch within it,
// m the number of minibatches per epoch, t = e·m + i the global step (0-based).
//
//   constant      η = η0
//   inverse_time  η = t0 / (t + t1)                 (report 000, its ref. [4] eq. 18;
//                                                    report 000 used t0 = t1 = 30·m)
//   epoch_decay   η = η0 / (e·m + 1)                (report 003; changes once per epoch)
//   step          η = η0 · drop^floor(e / every)
//   exponential   η = η0 · γ^e
#pragma once

#include <cstddef>
#include <string>

namespace xgrad::nn {

enum class ScheduleKind { Constant, InverseTime, EpochDecay, Step, Exponential };

struct Schedule {
  ScheduleKind kind = ScheduleKind::Constant;
  double eta0 = 1e-3;  // constant, epoch_decay, step, exponential
  double t0 = 1.0;     // inverse_time numerator
  double t1 = 1.0;     // inverse_time offset
  double drop = 0.5;   // step: factor per `every` epochs
  std::size_t every = 10;
  double gamma = 0.95;  // exponential: factor per epoch

  static Schedule constant(double eta0);
  static Schedule inverse_time(double t0, double t1);
  static Schedule epoch_decay(double eta0);
  static Schedule step(double eta0, double drop, std::size_t every);
  static Schedule exponential(double eta0, double gamma);

  /// The learning rate of step i of epoch e, with m steps per epoch (m >= 1).
  double operator()(std::size_t epoch, std::size_t step_in_epoch,
                    std::size_t steps_per_epoch) const;
  /// Throws std::invalid_argument naming the value out of range (every rate > 0 and
  /// finite, t0 > 0, t1 > 0, drop and gamma in (0, 1], every >= 1).
  void validate() const;
  /// Round-trips through parse(): "constant:0.001", "inverse_time:5,50", ...
  std::string to_string() const;
  /// Parses "constant:ETA0", "inverse_time:T0,T1", "epoch_decay:ETA0",
  /// "step:ETA0,DROP,EVERY", "exponential:ETA0,GAMMA"; a bare number is a constant
  /// rate. Throws std::invalid_argument naming the text and what is wrong.
  static Schedule parse(const std::string& text);
};

}  // namespace xgrad::nn
