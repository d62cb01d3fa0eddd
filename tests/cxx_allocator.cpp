/* cxx_allocator.cpp — hakmem::allocator<T> (include/hakmem_allocator.hpp)
 * under std::vector, std::map, std::unordered_map and std::allocate_shared,
 * and the proof that their memory came from hakmem through the allocator.
 *
 * tests/install.sh builds it with g++ -std=c++17 against the installed header
 * and libhakmem.a, linked with
 *     -Wl,--wrap=hak_malloc,--wrap=hak_aligned_alloc,--wrap=hak_free
 * so the calls this file's code makes to those three (the header's inline
 * allocate and deallocate) reach the counting wrappers below, which call the
 * library (__real_*) and keep every block they handed out in a table. The
 * global operator new and delete are replaced by counting ones. Then, for each
 * container's work:
 *   - operator new is not called at all (an allocator that fell back on new,
 *     or a container that used std::allocator, is caught);
 *   - the hak_ calls happen (one per allocate_shared, exactly), and the
 *     pointers a container holds (a vector's data()) are blocks the wrappers
 *     handed out and has not taken back;
 *   - every hak_free is of a block the wrappers handed out and not yet freed,
 *     and when the container is gone every block has been freed.
 * A control run does the same vector work with std::allocator and must see
 * operator new called and no hak_ call, so both counters are shown to see
 * what they claim to.
 * Prints PASS/FAIL lines; exit status 1 if anything failed. */
#include <hakmem_allocator.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

/* ---- counting: global operator new, and the hak_ calls ------------------------ */
static std::size_t new_calls;

void *operator new(std::size_t n) {
  ++new_calls;
  if (void *p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void *operator new(std::size_t n, std::align_val_t a) {
  ++new_calls;
  std::size_t al = static_cast<std::size_t>(a);
  if (void *p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete(void *p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void *p, std::size_t, std::align_val_t) noexcept { std::free(p); }

/* The blocks the wrappers handed out and have not taken back: open
 * addressing over a static table (no allocation of its own), cleared when
 * nothing is live. */
enum { TABLE_SLOTS = 1 << 20 };
static void *table[TABLE_SLOTS];
static void *const TOMBSTONE = &table; /* never a block */
static std::size_t live, hak_allocs, hak_aligned_allocs, hak_frees, foreign_frees;

static std::size_t slot_of(const void *p) {
  return (reinterpret_cast<std::uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ull >> 44; /* 20 bits */
}
static void table_add(void *p) {
  std::size_t i = slot_of(p);
  while (table[i] != nullptr && table[i] != TOMBSTONE) i = (i + 1) % TABLE_SLOTS;
  table[i] = p;
  ++live;
}
static bool table_has(const void *p) {
  for (std::size_t i = slot_of(p); table[i] != nullptr; i = (i + 1) % TABLE_SLOTS)
    if (table[i] == p) return true;
  return false;
}
static bool table_remove(void *p) {
  for (std::size_t i = slot_of(p); table[i] != nullptr; i = (i + 1) % TABLE_SLOTS)
    if (table[i] == p) {
      table[i] = TOMBSTONE;
      if (--live == 0) std::memset(table, 0, sizeof table);
      return true;
    }
  return false;
}

extern "C" {
void *__real_hak_malloc(std::size_t);
void *__real_hak_aligned_alloc(std::size_t, std::size_t);
void __real_hak_free(void *);

void *__wrap_hak_malloc(std::size_t n) {
  void *p = __real_hak_malloc(n);
  ++hak_allocs;
  if (p) table_add(p);
  return p;
}
void *__wrap_hak_aligned_alloc(std::size_t align, std::size_t n) {
  void *p = __real_hak_aligned_alloc(align, n);
  ++hak_aligned_allocs;
  if (p) table_add(p);
  return p;
}
void __wrap_hak_free(void *p) {
  ++hak_frees;
  if (p && !table_remove(p)) ++foreign_frees; /* still freed: hakmem stops a foreign one */
  __real_hak_free(p);
}
}

/* ---- checks ---------------------------------------------------------------------- */
static int failures;
static void check(bool ok, const char *what) {
  std::printf("%s cxx: %s\n", ok ? "PASS" : "FAIL", what);
  if (!ok) ++failures;
}

/* What one piece of work did, between begin() and end(). */
struct phase {
  std::size_t new0 = new_calls, allocs0 = hak_allocs + hak_aligned_allocs, frees0 = hak_frees;
  std::size_t news() const { return new_calls - new0; }
  std::size_t allocs() const { return hak_allocs + hak_aligned_allocs - allocs0; }
  std::size_t frees() const { return hak_frees - frees0; }
};
static char buf[512];
/* Each container's work ends with: no operator new, hak_ calls made, every
 * block freed, no foreign free. */
static void check_phase(const char *name, const phase &ph, std::size_t min_allocs) {
  std::snprintf(buf, sizeof buf, "%s: no operator new (%zu calls)", name, ph.news());
  check(ph.news() == 0, buf);
  std::snprintf(buf, sizeof buf, "%s: at least %zu blocks from hakmem (%zu)", name, min_allocs, ph.allocs());
  check(ph.allocs() >= min_allocs, buf);
  std::snprintf(buf, sizeof buf, "%s: every block given back with hak_free (%zu allocated, %zu freed, %zu live, %zu not hakmem's)",
                name, ph.allocs(), ph.frees(), live, foreign_frees);
  check(ph.frees() == ph.allocs() && live == 0 && foreign_frees == 0, buf);
}

template <class T>
using hvector = std::vector<T, hakmem::allocator<T>>;
using hstring = std::basic_string<char, std::char_traits<char>, hakmem::allocator<char>>;

struct alignas(64) line {
  std::uint64_t v[8];
};

/* ---- the allocator's type ------------------------------------------------------ */
using traits = std::allocator_traits<hakmem::allocator<int>>;
static_assert(std::is_same_v<traits::rebind_alloc<double>, hakmem::allocator<double>>);
static_assert(std::is_same_v<hakmem::allocator<int>::rebind<line>::other, hakmem::allocator<line>>);
static_assert(traits::is_always_equal::value);
static_assert(traits::propagate_on_container_move_assignment::value);
static_assert(hakmem::allocator<int>() == hakmem::allocator<line>());
static_assert(!(hakmem::allocator<int>() != hakmem::allocator<char>()));
static_assert(std::is_nothrow_move_assignable_v<hvector<int>>);

/* The vector work, for either allocator: returns a checksum. */
template <class A>
static std::uint64_t vector_work(const char *name, bool expect_hakmem) {
  std::vector<std::uint64_t, A> v;
  for (std::uint64_t i = 0; i < 200000; i++) v.push_back(i * 2654435761u % 1000003);
  bool owned = table_has(v.data());
  std::sort(v.begin(), v.end(), std::greater<>());
  std::vector<std::uint64_t, A> w(v); /* copy */
  w.resize(50000);
  w.shrink_to_fit();
  v = std::move(w); /* move assignment */
  std::uint64_t sum = 0;
  for (auto x : v) sum += x;
  if (expect_hakmem) {
    std::snprintf(buf, sizeof buf, "%s: the vector's buffer is a live block the allocator took from hakmem", name);
    check(owned && table_has(v.data()), buf);
  }
  return sum + (std::is_sorted(v.begin(), v.end(), std::greater<>()) ? 0 : 1);
}

int main() {
  /* control: std::allocator uses operator new, and no hak_ call */
  {
    phase ph;
    std::uint64_t a = vector_work<std::allocator<std::uint64_t>>("std::allocator", false);
    std::snprintf(buf, sizeof buf, "control: std::allocator's vector calls operator new (%zu calls) and no hak_ function (%zu)",
                  ph.news(), ph.allocs());
    check(ph.news() > 0 && ph.allocs() == 0, buf);
    phase ph2;
    std::uint64_t b = vector_work<hakmem::allocator<std::uint64_t>>("vector", true);
    check(a == b, "vector: same result as with std::allocator");
    check_phase("vector", ph2, 3);
  }

  /* over-aligned elements go through hak_aligned_alloc */
  {
    phase ph;
    std::size_t aligned0 = hak_aligned_allocs;
    {
      hvector<line> v(1000);
      for (std::size_t i = 0; i < v.size(); i++) v[i].v[7] = i;
      v.resize(5000);
      check(reinterpret_cast<std::uintptr_t>(v.data()) % 64 == 0 && table_has(v.data()),
            "vector<alignas(64)>: the buffer is 64-byte aligned and hakmem's");
      check(v[999].v[7] == 999, "vector<alignas(64)>: contents kept when it grew");
    }
    std::snprintf(buf, sizeof buf, "vector<alignas(64)>: took its blocks from hak_aligned_alloc (%zu calls)", hak_aligned_allocs - aligned0);
    check(hak_aligned_allocs - aligned0 >= 2, buf);
    check_phase("vector<alignas(64)>", ph, 2);
  }

  /* map: hakmem-allocated string keys (longer than the short-string buffer),
   * nodes through the allocator rebound to the node type */
  {
    phase ph;
    {
      std::map<hstring, long, std::less<hstring>, hakmem::allocator<std::pair<const hstring, long>>> m;
      char key[64];
      for (long i = 0; i < 20000; i++) {
        std::snprintf(key, sizeof key, "key-number-%08ld-padding", (i * 7919) % 20000);
        m.emplace(key, i);
      }
      std::size_t nodes = live;
      for (long i = 0; i < 20000; i += 2) {
        std::snprintf(key, sizeof key, "key-number-%08ld-padding", i);
        m.erase(hstring(key));
      }
      bool ordered = std::is_sorted(m.begin(), m.end(), [](auto &x, auto &y) { return x.first < y.first; });
      std::snprintf(key, sizeof key, "key-number-%08ld-padding", 12345L);
      auto it = m.find(hstring(key));
      check(m.size() == 10000 && ordered && it != m.end() && it->second % 2 == 1 && m.count(hstring("key-number-00012344-padding")) == 0,
            "map: 20000 inserts, 10000 erases, order and lookups right");
      std::snprintf(buf, sizeof buf, "map: nodes and keys are hakmem blocks (%zu live for 20000 entries)", nodes);
      check(nodes >= 40000, buf);
      auto copy = m;
      decltype(m) moved;
      moved = std::move(copy);
      check(moved == m, "map: copy and move assignment");
    }
    check_phase("map", ph, 40000);
  }

  /* unordered_map: buckets and nodes */
  {
    phase ph;
    {
      std::unordered_map<std::uint64_t, hstring, std::hash<std::uint64_t>, std::equal_to<std::uint64_t>,
                         hakmem::allocator<std::pair<const std::uint64_t, hstring>>>
          u;
      for (std::uint64_t i = 0; i < 50000; i++) u.emplace(i * 0x9E3779B97F4A7C15ull, hstring(40, char('a' + i % 26)));
      u.rehash(200000);
      std::size_t found = 0;
      for (std::uint64_t i = 0; i < 50000; i++) {
        auto it = u.find(i * 0x9E3779B97F4A7C15ull);
        if (it != u.end() && it->second.size() == 40 && it->second[39] == char('a' + i % 26)) found++;
      }
      for (std::uint64_t i = 0; i < 50000; i += 3) u.erase(i * 0x9E3779B97F4A7C15ull);
      std::snprintf(buf, sizeof buf, "unordered_map: 50000 inserts, rehash, %zu of 50000 found, %zu left after erasing a third", found, u.size());
      check(found == 50000 && u.size() == 33333 && u.bucket_count() >= 200000, buf);
      decltype(u) other;
      other.swap(u);
      check(u.empty() && other.size() == 33333, "unordered_map: swap");
    }
    check_phase("unordered_map", ph, 100000);
  }

  /* allocate_shared: one block per object, control block and object together */
  {
    phase ph;
    {
      hvector<std::shared_ptr<hstring>> owners; /* reserve: the vector's own growth is not counted below */
      owners.reserve(10000);
      std::size_t before = hak_allocs + hak_aligned_allocs;
      for (int i = 0; i < 10000; i++)
        owners.push_back(std::allocate_shared<hstring>(hakmem::allocator<hstring>(), 3, char('x')));
      std::size_t per = hak_allocs + hak_aligned_allocs - before;
      std::snprintf(buf, sizeof buf, "allocate_shared: exactly one hakmem block per object (%zu for 10000)", per);
      check(per == 10000, buf);
      std::weak_ptr<hstring> w = owners[5000];
      auto copy = owners[5000];
      check(copy.use_count() == 2 && *copy == "xxx", "allocate_shared: use count and value");
      owners.clear();
      check(!w.expired() && copy.use_count() == 1, "allocate_shared: a copy outlives the vector");
      copy.reset();
      check(w.expired(), "allocate_shared: weak_ptr expires with the last owner");
      auto l = std::allocate_shared<line>(hakmem::allocator<line>());
      check(reinterpret_cast<std::uintptr_t>(l.get()) % 64 == 0, "allocate_shared<alignas(64)>: the object is 64-byte aligned");
    }
    check_phase("allocate_shared", ph, 10001);
  }

  /* failures are exceptions, as with std::allocator */
  {
    hakmem::allocator<std::uint64_t> a;
    bool length = false, nomem = false;
    try {
      (void)a.allocate(a.max_size() + 1);
    } catch (const std::bad_array_new_length &) {
      length = true;
    }
    check(length, "allocate(max_size() + 1) throws std::bad_array_new_length");
    try {
      (void)a.allocate(a.max_size() / 2); /* 2^63 bytes: hak_malloc says ENOMEM */
    } catch (const std::bad_alloc &) {
      nomem = true;
    }
    check(nomem, "allocate(2^63 bytes) throws std::bad_alloc");
  }

  std::printf("cxx: variant %s, %zu hak_malloc, %zu hak_aligned_alloc, %zu hak_free, %zu operator new (control)\n",
              hak_variant(), hak_allocs, hak_aligned_allocs, hak_frees, new_calls);
  return failures ? 1 : 0;
}
