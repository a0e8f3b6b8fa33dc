// xgrad::parallel_for, the engine's one way to use more than one thread outside BLAS:
// chunks cover the range exactly once on cache-line edges, small ranges stay on the
// calling thread, and a parallel gather gives the same batch as a serial one.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <omp.h>
#include <xtensor/xview.hpp>

#include "xgrad/ops.hpp"
#include "xgrad/parallel.hpp"
#include "xgrad/tape.hpp"

#include "engine_test_util.hpp"

extern "C" int openblas_get_num_threads(void);  // from <cblas.h>, which xtensor-blas shuns

namespace {

using xgrad_test::ThreadsFor;

/// The chunks parallel_for hands out, sorted by start, with the OpenMP thread of each.
std::vector<std::pair<std::size_t, std::size_t>> chunks_of(std::size_t n, std::size_t min_chunk,
                                                           std::vector<int>* thread_ids) {
  std::vector<std::pair<std::size_t, std::size_t>> chunks(64);
  std::vector<int> ids(64, -1);
  std::size_t used = 0;
  xgrad::parallel_for(n, min_chunk, [&](std::size_t begin, std::size_t end) {
    std::size_t slot = 0;
#pragma omp atomic capture
    slot = used++;
    chunks[slot] = {begin, end};
    ids[slot] = omp_get_thread_num();
  });
  chunks.resize(used);
  ids.resize(used);
  std::vector<std::size_t> order(used);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return chunks[a].first < chunks[b].first; });
  std::vector<std::pair<std::size_t, std::size_t>> sorted;
  thread_ids->clear();
  for (const std::size_t k : order) {
    sorted.push_back(chunks[k]);
    thread_ids->push_back(ids[k]);
  }
  return sorted;
}

}  // namespace

TEST_CASE("parallel_for covers the range once, in one chunk per thread on cache-line edges") {
  const ThreadsFor two(2);
  // n / 2 is not a multiple of 16 for 40,040 and 65,537: the edge must be rounded.
  for (const std::size_t n : {std::size_t{40040}, std::size_t{200704}, std::size_t{65537}}) {
    CAPTURE(n);
    std::vector<int> ids;
    const auto chunks = chunks_of(n, xgrad::kParallelItems, &ids);
    REQUIRE(chunks.size() == 2);
    CHECK(chunks.front().first == 0);
    CHECK(chunks.front().second == chunks.back().first);  // disjoint and gap-free
    CHECK(chunks.back().second == n);
    CHECK(chunks.front().second % 16 == 0);  // 64 bytes of float: no shared cache line
    CHECK(ids[0] != ids[1]);                 // two threads did the work
  }
}

TEST_CASE("xgrad runs on OpenBLAS's OpenMP build, the pool parallel_for shares") {
  // The pthread build would be a second pool fighting ours; parallel_for would then run
  // serially (docs/engine.md §8). A build or RUNPATH mistake shows up here first.
  CHECK(xgrad::detail::one_thread_pool());
}

TEST_CASE("parallel_for over rows (align 1) splits evenly") {
  const ThreadsFor two(2);
  std::vector<int> ids;
  std::vector<std::pair<std::size_t, std::size_t>> chunks;
  std::size_t used = 0;
  std::vector<std::pair<std::size_t, std::size_t>> seen(8);
  xgrad::parallel_for(
      100, 10,
      [&](std::size_t begin, std::size_t end) {
        std::size_t slot = 0;
#pragma omp atomic capture
        slot = used++;
        seen[slot] = {begin, end};
      },
      /*align=*/1);
  REQUIRE(used == 2);
  std::sort(seen.begin(), seen.begin() + 2);
  CHECK(seen[0] == std::make_pair(std::size_t{0}, std::size_t{50}));
  CHECK(seen[1] == std::make_pair(std::size_t{50}, std::size_t{100}));
}

TEST_CASE("an exception thrown in a chunk reaches the caller after the region") {
  const ThreadsFor two(2);
  CHECK_THROWS_WITH_AS(xgrad::parallel_for(100000, 1000,
                                           [](std::size_t begin, std::size_t) {
                                             if (begin > 0) throw std::runtime_error("chunk 2");
                                           }),
                       "chunk 2", std::runtime_error);
}

TEST_CASE("a GEMM runs OpenBLAS on one thread and leaves the caller's OpenMP setting") {
  // OpenBLAS's OpenMP build takes its count from the calling thread's OpenMP setting;
  // xgrad sets it to 1 around its calls (it shares products out over its own pool) and
  // restores it, so a user's std::thread with its own setting keeps it; and the product
  // has the bits of the same product at one thread.
  const std::size_t m = 128, n = 256, k = 784;  // MNIST's forward product
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  xgrad::Matrix<float> a({m, k}), b({k, n});
  for (float& v : a)
    v = u(rng);
  for (float& v : b)
    v = u(rng);
  xgrad::Matrix<float> one_thread;
  {
    const ThreadsFor one(1);
    xgrad::Tape<float> tape;
    one_thread = xgrad::matmul(tape.constant(a), tape.constant(b)).value();
  }
  const ThreadsFor two(2);
  std::thread worker([&] {
    omp_set_num_threads(3);  // what a fresh thread on a bigger machine would have
    xgrad::Tape<float> tape;
    CHECK(xgrad::matmul(tape.constant(a), tape.constant(b)).value() == one_thread);
    CHECK(omp_get_max_threads() == 3);
  });
  worker.join();
  CHECK(xgrad::threads() == 2);
}

TEST_CASE("the contention guard: a hiccup is forgiven, a neighbour sends regions to one thread") {
  // The verdicts, on made-up times (a busy CI machine cannot change them): a region of
  // 100 µs of work that waited 5 ms more is slow; one that waited 50 µs is not.
  const std::int64_t work = 100'000, slow = work + 5'000'000, clean = work + 50'000;
  xgrad::detail::set_contention_guard(true);  // clears its state
  xgrad::detail::judge_region(slow, work);
  CHECK(xgrad::detail::contention_serial_regions_left() == 0);  // once: a hiccup
  for (int k = 0; k < 8; ++k)
    xgrad::detail::judge_region(clean, work);
  xgrad::detail::judge_region(slow, work);
  CHECK(xgrad::detail::contention_serial_regions_left() == 0);  // the first one is forgotten
  xgrad::detail::judge_region(clean, work);
  xgrad::detail::judge_region(slow, work);  // two among the last eight: contention
  CHECK(xgrad::detail::contention_serial_regions_left() == 256);
  // Long work that waited a little more than 300 µs is not slow: the wait must also pass
  // the fastest thread's own work.
  xgrad::detail::set_contention_guard(true);
  xgrad::detail::judge_region(2'000'000 + 400'000, 2'000'000);
  xgrad::detail::judge_region(2'000'000 + 400'000, 2'000'000);
  CHECK(xgrad::detail::contention_serial_regions_left() == 0);
  // Contention again after a penalty quadruples it; clean regions halve it back.
  xgrad::detail::judge_region(slow, work);
  xgrad::detail::judge_region(slow, work);
  CHECK(xgrad::detail::contention_serial_regions_left() == 256);
  xgrad::detail::judge_region(slow, work);
  xgrad::detail::judge_region(slow, work);
  CHECK(xgrad::detail::contention_serial_regions_left() == 1024);
  xgrad::detail::judge_region(clean, work);  // 4096 -> 2048
  xgrad::detail::judge_region(slow, work);
  xgrad::detail::judge_region(slow, work);
  CHECK(xgrad::detail::contention_serial_regions_left() == 2048);
  // At most 65,536 regions.
  for (int k = 0; k < 8; ++k) {
    xgrad::detail::judge_region(slow, work);
    xgrad::detail::judge_region(slow, work);
  }
  CHECK(xgrad::detail::contention_serial_regions_left() == 65536);
  xgrad::detail::set_contention_guard(true);
}

TEST_CASE("a region whose thread is held up, twice, sends the next regions to one thread") {
  const ThreadsFor two(2);
  xgrad::detail::set_contention_guard(true);  // clears its state
  // One thread held up for 20 ms, as if the OS had given its core to another process.
  // Other load on the machine can only add slow regions, so the outcome is certain.
  const auto held_up = [](std::size_t begin, std::size_t) {
    if (begin > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  };
  xgrad::parallel_for(std::size_t{1024}, std::size_t{16}, held_up);
  xgrad::parallel_for(std::size_t{1024}, std::size_t{16}, held_up);
  const int penalty = xgrad::detail::contention_serial_regions_left();
  CHECK(penalty >= 256);
  std::vector<int> ids;
  const auto chunks = chunks_of(1024, 16, &ids);  // served on one thread, same coverage
  CHECK(chunks.size() == 1);
  CHECK(chunks.front() == std::make_pair(std::size_t{0}, std::size_t{1024}));
  CHECK(ids.front() == 0);
  CHECK(xgrad::detail::contention_serial_regions_left() == penalty - 1);
  // Off: regions run in parallel again at once (and the state is cleared).
  xgrad::detail::set_contention_guard(false);
  CHECK(xgrad::detail::contention_serial_regions_left() == 0);
  CHECK(chunks_of(1024, 16, &ids).size() == 2);
  xgrad::detail::set_contention_guard(true);
}

TEST_CASE("parallel_for below two chunks of work is one call on the calling thread") {
  const ThreadsFor two(2);
  std::vector<int> ids;
  const auto small = chunks_of(2 * xgrad::kParallelItems - 1, xgrad::kParallelItems, &ids);
  REQUIRE(small.size() == 1);
  CHECK(small[0] == std::make_pair(std::size_t{0}, 2 * xgrad::kParallelItems - 1));
  CHECK(ids[0] == 0);
  CHECK_FALSE(omp_in_parallel());

  const ThreadsFor one(1);
  const auto serial = chunks_of(1000000, xgrad::kParallelItems, &ids);
  REQUIRE(serial.size() == 1);
  CHECK(serial[0] == std::make_pair(std::size_t{0}, std::size_t{1000000}));
}

TEST_CASE("parallel_for sets every element of a large buffer exactly once") {
  const ThreadsFor two(2);
  std::vector<int> hits(100003, 0);
  xgrad::parallel_for(hits.size(), 1000, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      ++hits[i];
  });
  CHECK(std::count(hits.begin(), hits.end(), 1) == static_cast<long>(hits.size()));
}

TEST_CASE("gather_rows gives the same minibatch at one and two threads") {
  const std::size_t rows = 3000, cols = 784;
  xgrad::Matrix<float> data = xt::zeros<float>({rows, cols});
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& x : data)
    x = u(rng);
  std::vector<std::size_t> order(rows);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), rng);

  auto gather = [&](int threads) {
    const ThreadsFor t(threads);
    xgrad::Tape<float> tape;
    return xgrad::Matrix<float>(tape.gather_rows(data, order, 500, 756).value());
  };
  const xgrad::Matrix<float> serial = gather(1), parallel = gather(2);
  REQUIRE(parallel.shape(0) == 256);
  CHECK(parallel == serial);
  for (std::size_t r = 0; r < 256; ++r)
    CHECK(xt::view(parallel, r, xt::all()) == xt::view(data, order[500 + r], xt::all()));
}

namespace {

/// Value of op(x) + b and the gradients of x and b under a fixed upstream gradient, on a
/// 130 x 301 input (39,130 elements: two chunks with a SIMD tail), at a thread count.
template <class T, class Op>
std::vector<xgrad::Matrix<T>> forward_backward(Op op, int threads) {
  const ThreadsFor t(threads);
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.1, 2.0), s(-1.0, 1.0);
  xgrad::Matrix<T> x = xt::zeros<T>({std::size_t{130}, std::size_t{301}});
  xgrad::Matrix<T> b = xt::zeros<T>({std::size_t{1}, std::size_t{301}});
  xgrad::Matrix<T> upstream = xt::zeros<T>({std::size_t{130}, std::size_t{301}});
  for (T& v : x)
    v = static_cast<T>(u(rng) * (s(rng) < 0 ? -1 : 1));
  for (T& v : b)
    v = static_cast<T>(s(rng));
  for (T& v : upstream)
    v = static_cast<T>(s(rng));
  xgrad::Tape<T> tape;
  const auto vx = tape.variable(x), vb = tape.variable(b);
  const auto y = op(vx) + vb;  // the row-broadcast add of x·W + b
  tape.backward(y, upstream);
  return {y.value(), vx.grad(), vb.grad()};
}

template <class T>
void check_same_at_one_and_two_threads() {
  {  // 130 x 301 elements and 130 rows of 301 really run as two chunks at two threads
    const ThreadsFor two(2);
    std::vector<int> ids;
    REQUIRE(chunks_of(130 * 301, xgrad::kParallelItems, &ids).size() == 2);
  }
  using Tensor = xgrad::Tensor<T>;
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops = {
      {"neg", [](const Tensor& a) { return -a; }},
      {"exp", [](const Tensor& a) { return xgrad::exp(a); }},
      {"log", [](const Tensor& a) { return xgrad::log(xgrad::abs(a)); }},
      {"sqrt", [](const Tensor& a) { return xgrad::sqrt(xgrad::square(a)); }},
      {"sigmoid", [](const Tensor& a) { return xgrad::sigmoid(a); }},
      {"tanh", [](const Tensor& a) { return xgrad::tanh(a); }},
      {"relu", [](const Tensor& a) { return xgrad::relu(a); }},
      {"leaky_relu", [](const Tensor& a) { return xgrad::leaky_relu(a, T(0.1)); }},
      {"elu", [](const Tensor& a) { return xgrad::elu(a, T(0.5)); }},
      {"affine", [](const Tensor& a) { return a * T(3) + T(1); }},
  };
  for (const auto& [label, op] : ops) {
    const std::string name = label;
    CAPTURE(name);
    const auto one = forward_backward<T>(op, 1), two = forward_backward<T>(op, 2);
    CHECK(one[0] == two[0]);  // value of op(x) + b
    CHECK(one[1] == two[1]);  // dx
    CHECK(one[2] == two[2]);  // db
  }
}

}  // namespace

TEST_CASE_TEMPLATE(
    "elementwise ops and the row-broadcast add are bit-identical at one and two threads", T, float,
    double) {
  check_same_at_one_and_two_threads<T>();
}

TEST_CASE("parallel_for's chunk edges are the even split rounded to the nearest 16") {
  // n = 56 in two parts: the even edge 28 is 12 from 16 and 4 from 32, so 32.
  CHECK(xgrad::detail::chunk_edge(56, 1, 2, 16) == 32);
  CHECK(xgrad::detail::chunk_edge(56, 0, 2, 16) == 0);
  CHECK(xgrad::detail::chunk_edge(56, 2, 2, 16) == 56);
  // 4 parts of 120: 30 -> 32, 60 -> 64, 90 -> 96 (rounding down: 16, 48, 80).
  CHECK(xgrad::detail::chunk_edge(120, 1, 4, 16) == 32);
  CHECK(xgrad::detail::chunk_edge(120, 2, 4, 16) == 64);
  CHECK(xgrad::detail::chunk_edge(120, 3, 4, 16) == 96);
  // And parallel_for hands out exactly those chunks at two threads.
  const int before = xgrad::threads();
  xgrad::set_threads(2);
  xgrad::detail::set_contention_guard(false);
  std::vector<std::size_t> starts(2, 999), ends(2, 999);
  xgrad::parallel_for(std::size_t{56}, std::size_t{28}, [&](std::size_t b, std::size_t e) {
    const std::size_t slot = b == 0 ? 0 : 1;
    starts[slot] = b;
    ends[slot] = e;
  });
  xgrad::set_threads(before);
  xgrad::detail::set_contention_guard(true);
  if (xgrad::detail::one_thread_pool()) {
    CHECK(starts[0] == 0);
    CHECK(ends[0] == 32);
    CHECK(starts[1] == 32);
    CHECK(ends[1] == 56);
  }
}

TEST_CASE("set_threads also sets OpenBLAS's count, for code calling BLAS itself") {
  const int before = xgrad::threads();
  xgrad::set_threads(3);
  CHECK(openblas_get_num_threads() == 3);
  xgrad::set_threads(1);
  CHECK(openblas_get_num_threads() == 1);
  xgrad::set_threads(before);
  CHECK(openblas_get_num_threads() == before);
}
