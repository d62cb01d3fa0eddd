/* signal_flag.c — a signal whose only work is to raise a flag that a safe
 * point reads later (the statistics' signal, stats.c; the heap profiler's,
 * profile.c): a handler may not allocate, lock or write a report, so it
 * raises the flag and returns. The program's own handler for the signal,
 * if it had one, is kept and called after the flag is raised, with its mask
 * and the flags that change how it runs (SA_RESTART, SA_NODEFER,
 * SA_RESETHAND, SA_ONSTACK); one the program installs later replaces
 * hakmem's, as any sigaction does. Which signals are allowed is options.c's
 * rule (those that decide nothing of a program's fate). */
#include <string.h>

#include "internal.h"

#define SIGNALS_MAX 65

static volatile sig_atomic_t *flag_of[SIGNALS_MAX];   /* per signal: the flag it raises */
static struct sigaction program_action[SIGNALS_MAX];  /* per signal: the action before hakmem's */

static void on_signal(int sig, siginfo_t *info, void *ctx) {
  if (sig <= 0 || sig >= SIGNALS_MAX || flag_of[sig] == NULL) return;
  *flag_of[sig] = 1;
  const struct sigaction *p = &program_action[sig];
  if (p->sa_flags & SA_SIGINFO) p->sa_sigaction(sig, info, ctx);
  else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) p->sa_handler(sig);
}

bool hak_signal_flag_catch(int sig, volatile sig_atomic_t *flag) {
  if (sig <= 0 || sig >= SIGNALS_MAX || flag_of[sig] != NULL) return false;
  struct sigaction *p = &program_action[sig];
  if (sigaction(sig, NULL, p) != 0) return false;
  bool handler = (p->sa_flags & SA_SIGINFO) || (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (handler) {
    sa.sa_mask = p->sa_mask;
    sa.sa_flags = SA_SIGINFO | (p->sa_flags & (SA_RESTART | SA_NODEFER | SA_RESETHAND | SA_ONSTACK));
  }
  flag_of[sig] = flag;
  if (sigaction(sig, &sa, NULL) == 0) return true;
  flag_of[sig] = NULL;
  return false;
}
