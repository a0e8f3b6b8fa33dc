// History as CSV.
#include "xgrad/nn/history.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <ostream>
#include <stdexcept>

namespace xgrad::nn {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Completed:
      return "completed";
    case StopReason::EarlyStopping:
      return "early_stop";
    case StopReason::NonFinite:
      return "non_finite";
    case StopReason::Callback:
      return "stopped";
  }
  return "?";
}

std::vector<std::string> History::csv_columns() const {
  const std::string m = metric == MetricKind::None ? "metric" : metric_name(metric);
  return {"epoch",         "train_loss", "train_" + m,         "val_loss", "val_" + m,
          "learning_rate", "seconds",    "samples_per_second", "event"};
}

namespace {
// Empty for "not computed"; a diverged loss is NaN too, and the event column says so.
// Losses and metrics round-trip (17 digits); times need no more than 6.
void field(std::ostream& out, double v, int digits = std::numeric_limits<double>::max_digits10) {
  if (std::isnan(v)) return;
  const auto old = out.precision(digits);
  out << v;
  out.precision(old);
}
}  // namespace

void History::write_csv(std::ostream& out) const {
  const auto cols = csv_columns();
  for (std::size_t i = 0; i < cols.size(); ++i)
    out << (i ? "," : "") << cols[i];
  out << '\n';
  for (const EpochRecord& r : epochs) {
    out << r.epoch << ',';
    field(out, r.train_loss);
    out << ',';
    field(out, r.train_metric);
    out << ',';
    field(out, r.val_loss);
    out << ',';
    field(out, r.val_metric);
    out << ',';
    field(out, r.learning_rate);
    out << ',';
    field(out, r.seconds, 6);
    out << ',';
    field(out, r.samples_per_second, 6);
    out << ',' << r.event << '\n';
  }
}

void History::write_csv(const std::string& path) const {
  std::ofstream out(path);
  if (!out) {
    throw std::runtime_error("history: cannot open '" + path +
                             "' for writing: " + std::strerror(errno));
  }
  write_csv(out);
  out.flush();
  if (!out) throw std::runtime_error("history: writing '" + path + "' failed");
}

}  // namespace xgrad::nn
