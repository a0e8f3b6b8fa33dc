// Learning-rate schedules and their text form.
#include "xgrad/nn/schedule.hpp"

#include <cctype>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "number_text.hpp"

namespace xgrad::nn {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

double number(const std::string& text, const std::string& item) {
  const std::string s = trim(item);
  const detail::NumberText number = detail::read_number(s);
  if (number.overflow)
    throw std::invalid_argument("schedule '" + text + "': '" + s +
                                "' is out of the range of a double");
  if (!number.whole)
    throw std::invalid_argument("schedule '" + text + "': '" + s + "' is not a number");
  return number.value;
}

void positive(const char* what, double x) {
  if (!(x > 0.0) || !std::isfinite(x)) {
    std::ostringstream msg;
    msg << "schedule: " << what << " = " << x << " must be positive and finite";
    throw std::invalid_argument(msg.str());
  }
}

void factor(const char* what, double x) {
  if (!(x > 0.0 && x <= 1.0)) {
    std::ostringstream msg;
    msg << "schedule: " << what << " = " << x << " must be in (0, 1]";
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace

Schedule Schedule::constant(double eta0) {
  Schedule s;
  s.kind = ScheduleKind::Constant;
  s.eta0 = eta0;
  s.validate();
  return s;
}

Schedule Schedule::inverse_time(double t0, double t1) {
  Schedule s;
  s.kind = ScheduleKind::InverseTime;
  s.t0 = t0;
  s.t1 = t1;
  s.validate();
  return s;
}

Schedule Schedule::epoch_decay(double eta0) {
  Schedule s;
  s.kind = ScheduleKind::EpochDecay;
  s.eta0 = eta0;
  s.validate();
  return s;
}

Schedule Schedule::step(double eta0, double drop, std::size_t every) {
  Schedule s;
  s.kind = ScheduleKind::Step;
  s.eta0 = eta0;
  s.drop = drop;
  s.every = every;
  s.validate();
  return s;
}

Schedule Schedule::exponential(double eta0, double gamma) {
  Schedule s;
  s.kind = ScheduleKind::Exponential;
  s.eta0 = eta0;
  s.gamma = gamma;
  s.validate();
  return s;
}

void Schedule::validate() const {
  switch (kind) {
    case ScheduleKind::InverseTime:
      positive("t0", t0);
      positive("t1", t1);
      break;
    case ScheduleKind::Step:
      positive("eta0", eta0);
      factor("drop", drop);
      if (every == 0) throw std::invalid_argument("schedule: step every = 0 epochs");
      break;
    case ScheduleKind::Exponential:
      positive("eta0", eta0);
      factor("gamma", gamma);
      break;
    case ScheduleKind::Constant:
    case ScheduleKind::EpochDecay:
      positive("eta0", eta0);
      break;
  }
}

double Schedule::operator()(std::size_t epoch, std::size_t step_in_epoch,
                            std::size_t steps_per_epoch) const {
  if (steps_per_epoch == 0) throw std::invalid_argument("schedule: 0 steps per epoch");
  const double e = static_cast<double>(epoch);
  const double m = static_cast<double>(steps_per_epoch);
  switch (kind) {
    case ScheduleKind::Constant:
      return eta0;
    case ScheduleKind::InverseTime:
      return t0 / (e * m + static_cast<double>(step_in_epoch) + t1);
    case ScheduleKind::EpochDecay:
      return eta0 / (e * m + 1.0);
    case ScheduleKind::Step:
      return eta0 * std::pow(drop, static_cast<double>(epoch / every));
    case ScheduleKind::Exponential:
      return eta0 * std::pow(gamma, e);
  }
  return eta0;
}

std::string Schedule::to_string() const {
  std::ostringstream out;
  out.precision(17);
  switch (kind) {
    case ScheduleKind::Constant:
      out << "constant:" << eta0;
      break;
    case ScheduleKind::InverseTime:
      out << "inverse_time:" << t0 << ',' << t1;
      break;
    case ScheduleKind::EpochDecay:
      out << "epoch_decay:" << eta0;
      break;
    case ScheduleKind::Step:
      out << "step:" << eta0 << ',' << drop << ',' << every;
      break;
    case ScheduleKind::Exponential:
      out << "exponential:" << eta0 << ',' << gamma;
      break;
  }
  return out.str();
}

Schedule Schedule::parse(const std::string& text) {
  const std::string t = trim(text);
  const auto colon = t.find(':');
  std::string name = t.substr(0, colon);
  for (char& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<std::string> args;
  if (colon != std::string::npos) {
    const std::string values = t.substr(colon + 1);
    std::stringstream rest(values);
    std::string item;
    while (std::getline(rest, item, ','))
      args.push_back(item);
    // getline drops a last empty item: "step:0.1,0.5,10," would pass as three values.
    if (!values.empty() && values.back() == ',') args.emplace_back();
  }
  auto want = [&](std::size_t n, const char* form) {
    if (args.size() != n) {
      throw std::invalid_argument("schedule '" + text + "': expected " + form + ", got " +
                                  std::to_string(args.size()) + " value(s)");
    }
  };
  // A bare number is a constant rate; a signed one too, so that "-0.01" is refused as not
  // positive rather than as an unknown kind.
  if (colon == std::string::npos && !name.empty() &&
      (std::isdigit(static_cast<unsigned char>(name[0])) || name[0] == '.' || name[0] == '-' ||
       name[0] == '+')) {
    return constant(number(text, name));
  }
  if (name == "constant") {
    want(1, "constant:ETA0");
    return constant(number(text, args[0]));
  }
  if (name == "inverse_time") {
    want(2, "inverse_time:T0,T1");
    return inverse_time(number(text, args[0]), number(text, args[1]));
  }
  if (name == "epoch_decay") {
    want(1, "epoch_decay:ETA0");
    return epoch_decay(number(text, args[0]));
  }
  if (name == "step") {
    want(3, "step:ETA0,DROP,EVERY");
    const double every = number(text, args[2]);
    // Bounded before the cast to size_t (undefined for inf or 1e20): up to 2^53 a double
    // holds every whole number exactly.
    if (!(every >= 1.0 && every <= 9007199254740992.0) || every != std::floor(every)) {
      throw std::invalid_argument("schedule '" + text + "': EVERY = " + trim(args[2]) +
                                  " is not a whole number of epochs from 1 to 2^53");
    }
    return step(number(text, args[0]), number(text, args[1]), static_cast<std::size_t>(every));
  }
  if (name == "exponential") {
    want(2, "exponential:ETA0,GAMMA");
    return exponential(number(text, args[0]), number(text, args[1]));
  }
  throw std::invalid_argument("schedule '" + text +
                              "': unknown kind (expected constant, inverse_time, epoch_decay, "
                              "step or exponential)");
}

}  // namespace xgrad::nn
