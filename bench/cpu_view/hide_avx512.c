/* Run a program as if this CPU had no AVX-512, AVX-VNNI or AMX: an AVX2 machine's view.

   Libraries that pick their kernels at run time (ONNX Runtime's MLAS, PyTorch, MKL, oneDNN,
   NumPy, FAISS's loader) ask the `cpuid` instruction what the CPU can do. Linux can make
   `cpuid` fault (arch_prctl ARCH_SET_CPUID, on CPUs with the `cpuid_fault` flag): this
   library, loaded with LD_PRELOAD, turns that on and answers each faulting `cpuid` itself,
   with the real answer minus the features above. Every program then runs the code paths it
   would run on an AVX2-only CPU, at this CPU's speed. Code compiled for AVX-512 (rather than
   dispatched at run time) is not affected: that is what `-march=native` builds do.

   SIGSEGV handlers installed by the program (Python's faulthandler, for one) are kept and
   called for every fault that is not a `cpuid`.

   Build: gcc -O2 -shared -fPIC -o hide_avx512.so hide_avx512.c -ldl
*/
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction;
static struct sigaction program_segv; /* the program's own SIGSEGV disposition */

static long set_cpuid_enabled(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void real_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* Leaf 7 feature bits of AVX-512, AVX-VNNI and AMX (Intel SDM vol. 2A, CPUID). */
static void hide(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    if (leaf != 7) return;
    if (sub == 0) {
        /* EBX: avx512f 16, dq 17, ifma 21, pf 26, er 27, cd 28, bw 30, vl 31 */
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ECX: vbmi 1, vbmi2 6, vnni 11, bitalg 12, vpopcntdq 14 */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4vnniw 2, 4fmaps 3, vp2intersect 8, amx-bf16 22, fp16 23, amx-tile 24, amx-int8 25 */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (sub == 1) {
        /* EAX: avx-vnni 4, avx512-bf16 5, amx-fp16 21, avx-ifma 23; EDX: avx-vnni-int8 4, avx10 19 */
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        r[3] &= ~((1u << 4) | (1u << 19));
    }
}

static void chain(int sig, siginfo_t *info, void *ctx) {
    if (program_segv.sa_flags & SA_SIGINFO) {
        if (program_segv.sa_sigaction) program_segv.sa_sigaction(sig, info, ctx);
        return;
    }
    if (program_segv.sa_handler == SIG_IGN) return;
    if (program_segv.sa_handler == SIG_DFL || program_segv.sa_handler == NULL) {
        /* Let the fault happen again with the default action: a core dump, as without us. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction(SIGSEGV, &dfl, NULL);
        return;
    }
    program_segv.sa_handler(sig);
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = (ucontext_t *)context;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (!(ip[0] == 0x0F && ip[1] == 0xA2)) {
        chain(sig, info, context);
        return;
    }
    uint32_t r[4];
    uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX];
    set_cpuid_enabled(1);
    real_cpuid(leaf, sub, r);
    set_cpuid_enabled(0);
    hide(leaf, sub, r);
    g[REG_RAX] = r[0];
    g[REG_RBX] = r[1];
    g[REG_RCX] = r[2];
    g[REG_RDX] = r[3];
    g[REG_RIP] += 2;
}

/* The program may install its own SIGSEGV handler: remember it and keep ours in place. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV) return real_sigaction(sig, act, old);
    if (old) *old = program_segv;
    if (act) program_segv = *act;
    return 0;
}

__attribute__((constructor)) static void start(void) {
    real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    program_segv.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &sa, NULL);
    if (set_cpuid_enabled(0) != 0) {
        fprintf(stderr, "hide_avx512: this CPU or kernel cannot make cpuid fault (no cpuid_fault flag)\n");
        exit(97);
    }
}
