// A main() for a libFuzzer target built without libFuzzer (any compiler, any
// sanitizer): feeds LLVMFuzzerTestOneInput every file of the corpus
// directories given, then, for $FUZZ_REPLAY_SECONDS (default 10), inputs made
// from them by random mutation (byte flips, inserted and erased bytes, cut
// ends, two inputs spliced). No coverage guidance: libFuzzer's search is
// tests/fuzz/run.sh's; this keeps the targets building and runs the seed
// corpus and shallow variants of it under ASan+UBSan in every CI run.
//
// Usage: <target>_replay CORPUS_DIR... Exit 0; a finding aborts (a sanitizer
// report or the target's own abort). The seed is printed first: the same
// seed ($FUZZ_REPLAY_SEED) and corpus make the same inputs in the same order.
#include <dirent.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMaxLen = 4096;  // as run.sh's -max_len

std::vector<std::string> ReadCorpus(const char* dir) {
  std::vector<std::string> inputs;
  DIR* d = ::opendir(dir);
  if (d == nullptr) {
    std::fprintf(stderr, "replay: cannot open corpus directory %s\n", dir);
    std::exit(2);
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string(dir) + "/" + e->d_name, std::ios::binary);
    inputs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ::closedir(d);
  return inputs;
}

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  for (int steps = 1 + static_cast<int>(pick(4)); steps > 0; --steps) {
    switch (pick(5)) {
      case 0:  // flip a byte's bits
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1 + pick(255));
        break;
      case 1:  // insert a random byte
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(pick(s.size() + 1)),
                 static_cast<char>(pick(256)));
        break;
      case 2:  // erase a run
        if (!s.empty()) {
          size_t at = pick(s.size());
          s.erase(at, 1 + pick(s.size() - at));
        }
        break;
      case 3:  // cut the end
        s.resize(pick(s.size() + 1));
        break;
      default: {  // splice with another input
        const std::string& other = corpus[pick(corpus.size())];
        s = s.substr(0, pick(s.size() + 1)) + other.substr(pick(other.size() + 1));
      }
    }
  }
  if (s.size() > kMaxLen) s.resize(kMaxLen);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
    return 2;
  }
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::string> more = ReadCorpus(argv[i]);
    corpus.insert(corpus.end(), more.begin(), more.end());
  }
  if (corpus.empty()) corpus.emplace_back();
  for (const std::string& input : corpus) Run(input);
  std::printf("replayed %zu corpus inputs\n", corpus.size());

  const char* env = std::getenv("FUZZ_REPLAY_SECONDS");
  const double seconds = env != nullptr && *env != 0 ? std::atof(env) : 10.0;
  const char* seed_env = std::getenv("FUZZ_REPLAY_SEED");
  const uint64_t seed = seed_env != nullptr && *seed_env != 0 ? std::strtoull(seed_env, nullptr, 10)
                                                          : std::random_device{}();
  std::printf("mutating for %.0f s, FUZZ_REPLAY_SEED=%llu\n", seconds,
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t runs = 0;
  while (std::chrono::steady_clock::now() < end) {
    Run(Mutate(corpus[rng() % corpus.size()], corpus, rng));
    ++runs;
  }
  std::printf("ran %llu mutated inputs, no finding\n", static_cast<unsigned long long>(runs));
  return 0;
}
