/* hakmem_allocator.hpp — a C++ standard allocator over the hakmem API.
 *
 *   #include <hakmem_allocator.hpp>
 *   std::vector<int, hakmem::allocator<int>> v;
 *   std::map<K, V, std::less<K>, hakmem::allocator<std::pair<const K, V>>> m;
 *   auto p = std::allocate_shared<T>(hakmem::allocator<T>(), args...);
 *
 * allocate(n) takes n * sizeof(T) bytes from hak_malloc, or from
 * hak_aligned_alloc(alignof(T), ...) when T is over-aligned (alignof(T) >
 * alignof(std::max_align_t), the alignment hak_malloc guarantees); deallocate
 * gives them back with hak_free, which takes both. Failure throws
 * std::bad_alloc, a count whose size does not fit in size_t throws
 * std::bad_array_new_length, as std::allocator does.
 *
 * The allocator has no state: every instance, of every T, can free what any
 * other allocated (hakmem has one heap per process), so all compare equal,
 * is_always_equal is true, and containers move and swap their storage in O(1)
 * whatever the propagation traits say. Those are std::allocator's: the
 * allocator goes along on move assignment, not on copy assignment or swap.
 *
 * Needs C++17 (if constexpr) and libhakmem: `pkg-config --cflags --libs hakmem`. */
#ifndef HAKMEM_ALLOCATOR_HPP
#define HAKMEM_ALLOCATOR_HPP

#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

#include "hakmem.h"

namespace hakmem {

template <class T>
class allocator {
public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::false_type;
  using is_always_equal = std::true_type;
  /* std::allocator_traits finds allocator<U> by itself; spelled out for code
   * that still says Alloc::rebind<U>::other. */
  template <class U>
  struct rebind {
    using other = allocator<U>;
  };

  constexpr allocator() noexcept = default;
  template <class U>
  constexpr allocator(const allocator<U> &) noexcept {}

  /* The largest n that allocate accepts (n * sizeof(T) fits in size_t). */
  constexpr size_type max_size() const noexcept {
    return std::numeric_limits<size_type>::max() / sizeof(T);
  }

  [[nodiscard]] T *allocate(size_type n) {
    static_assert(sizeof(T) > 0, "hakmem::allocator<T>: T must be a complete type");
    if (n > max_size()) throw std::bad_array_new_length();
    const size_type bytes = n * sizeof(T); /* 0 too: hak_malloc(0) returns a block */
    void *p;
    if constexpr (alignof(T) > alignof(std::max_align_t))
      p = hak_aligned_alloc(alignof(T), bytes); /* bytes: a multiple of alignof(T) */
    else
      p = hak_malloc(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T *>(p);
  }

  void deallocate(T *p, size_type) noexcept { hak_free(p); }
};

template <class T, class U>
constexpr bool operator==(const allocator<T> &, const allocator<U> &) noexcept {
  return true;
}
template <class T, class U>
constexpr bool operator!=(const allocator<T> &, const allocator<U> &) noexcept {
  return false;
}

} // namespace hakmem

#endif
