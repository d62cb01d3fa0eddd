/* symbolize_chain.c - leaks through a known call chain, for tests/symbolize.sh:
 * main -> chain_outer -> chain_middle -> chain_leaf -> malloc, each a call of
 * its own (noinline), and one allocation through an inlined function
 * (chain_inlined, always inlined into chain_leaf_inl). Built with -g and
 * without: the leak report and hakmem-trace's report must name file:line for
 * each of these frames, or object+offset without debug information. */
#include <stdio.h>
#include <stdlib.h>

void *volatile kept; /* not read: the blocks leak */

__attribute__((noinline)) static void *chain_leaf(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *chain_middle(size_t n) { return (char *)chain_leaf(n) + 0; }
__attribute__((noinline)) static void *chain_outer(size_t n) { return chain_middle(n); }

static inline __attribute__((always_inline)) void *chain_inlined(size_t n) { return malloc(n * 2); }
__attribute__((noinline)) static void *chain_leaf_inl(size_t n) { return chain_inlined(n); }

int main(void)
{
    void *p = chain_outer(1111);
    void *q = chain_leaf_inl(1000);
    p = NULL;
    q = NULL;
    kept = p;
    kept = q;
    return 0;
}
