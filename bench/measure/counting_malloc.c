/* The allocator of `--metric instructions` workers (LD_PRELOAD, with PYTHONMALLOC=malloc): a malloc whose cost
 * per call does not depend on the heap's history, so an instruction count measures the layer, not the heap.
 *
 * Why not glibc's: its cost moves with the state of its bins. A Conv2d(3, 8, 3) forward makes about 500 mallocs
 * and frees (oneDNN's descriptors, memaligned); glibc spent a quarter of the call's instructions in them, and
 * _int_free, _int_malloc and malloc_consolidate moved the call's count 0.4% from one batch of 20 calls to the next
 * in one process, and up to 0.9% between processes. jemalloc or mimalloc would be as history-dependent and are not
 * on a stock runner; this one is a page of C, built with the client-request library (bench.measure.instructions).
 *
 * Design: size classes (16-byte steps to 1 KiB, then 4 per doubling to 64 MiB), one LIFO free list per class,
 * blocks carved from 64 MiB mappings and never returned, no coalescing and no splitting: malloc and free are a
 * few dozen instructions whatever came before. Larger blocks are mapped and unmapped whole. A 16-byte header before
 * each block holds its class and its offset from the block's start, so aligned blocks (posix_memalign, torch's
 * 64-byte tensors) free like the others. One spin lock (valgrind runs one thread at a time, but may switch
 * between any two instructions). Replaces the functions the glibc manual lists for a replacement malloc.
 * Built with -fno-builtin: GCC would otherwise turn calloc's malloc + memset into a call to calloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <unistd.h>

#define HDR 16u
#define SMALL_STEP 16u
#define SMALL_MAX 1024u
#define SUBSTEPS 4u
#define MAX_CLASS_BYTES (64u << 20)
#define NCLASSES 128u
#define BIG 0xffffffffu
#define CHUNK (64u << 20)

typedef struct { uint32_t cls, off; uint64_t bytes; } header;

static void *free_list[NCLASSES];
static char *bump, *bump_end;
static volatile char lock_flag;

static void lock(void) { while (__atomic_test_and_set(&lock_flag, __ATOMIC_ACQUIRE)) sched_yield(); }
static void unlock(void) { __atomic_clear(&lock_flag, __ATOMIC_RELEASE); }

static uint32_t class_of(size_t n, size_t *bytes) {
    if (n <= SMALL_MAX) {
        size_t b = n < SMALL_STEP ? SMALL_STEP : (n + SMALL_STEP - 1) & ~(size_t)(SMALL_STEP - 1);
        *bytes = b;
        return (uint32_t)(b / SMALL_STEP - 1);
    }
    uint32_t cls = SMALL_MAX / SMALL_STEP;
    size_t b = SMALL_MAX;
    while (b < n) {  /* SUBSTEPS classes per doubling */
        size_t power = (size_t)1 << (63 - __builtin_clzll(b));
        b += power / SUBSTEPS;
        cls++;
    }
    *bytes = b;
    return cls;
}

static void *carve(size_t total) {
    if ((size_t)(bump_end - bump) < total) {
        void *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return NULL;
        bump = p;
        bump_end = bump + CHUNK;
    }
    void *p = bump;
    bump += total;
    return p;
}

/* a block of at least n bytes after the header, with `extra` bytes more to align within; its base */
static char *block(size_t n, size_t extra, uint32_t *cls_out, uint64_t *bytes_out) {
    size_t want = n + extra, bytes = want;
    if (want < n || want > SIZE_MAX - HDR - 4095) return NULL;  /* absurd sizes fail, as glibc's do */
    uint32_t cls = want < MAX_CLASS_BYTES ? class_of(want, &bytes) : BIG;
    if (cls == BIG || bytes >= MAX_CLASS_BYTES) {  /* mapped alone, unmapped on free */
        size_t total = (HDR + bytes + 4095) & ~(size_t)4095;
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        *cls_out = BIG;
        *bytes_out = total;
        return p;
    }
    lock();
    char *base = free_list[cls];
    if (base != NULL) free_list[cls] = *(void **)base;
    else base = carve(HDR + bytes);
    unlock();
    *cls_out = cls;
    *bytes_out = HDR + bytes;
    return base;
}

static void *aligned(size_t align, size_t n) {
    uint32_t cls;
    uint64_t bytes;
    if (align > ((size_t)1 << 30)) { errno = ENOMEM; return NULL; }  /* the header's offset is 32 bits */
    if (align <= HDR) align = HDR;
    else if (align & (align - 1)) align = (size_t)1 << (64 - __builtin_clzll(align));
    char *base = block(n, align - HDR, &cls, &bytes);
    if (base == NULL) { errno = ENOMEM; return NULL; }
    uintptr_t p = ((uintptr_t)base + HDR + align - 1) & ~(uintptr_t)(align - 1);
    header *h = (header *)(p - HDR);
    h->cls = cls;
    h->off = (uint32_t)(p - (uintptr_t)base);
    h->bytes = bytes;
    return (void *)p;
}

void *malloc(size_t n) { return aligned(HDR, n); }

void free(void *p) {
    if (p == NULL) return;
    header *h = (header *)((char *)p - HDR);
    char *base = (char *)p - h->off;
    if (h->cls == BIG) { munmap(base, h->bytes); return; }
    lock();
    *(void **)base = free_list[h->cls];
    free_list[h->cls] = base;
    unlock();
}

size_t malloc_usable_size(void *p) {
    if (p == NULL) return 0;
    header *h = (header *)((char *)p - HDR);
    return h->bytes - h->off;
}

void *calloc(size_t count, size_t n) {
    size_t total;
    if (__builtin_mul_overflow(count, n, &total)) { errno = ENOMEM; return NULL; }
    void *p = malloc(total);
    if (p != NULL) memset(p, 0, total);
    return p;
}

void *realloc(void *p, size_t n) {
    if (p == NULL) return malloc(n);
    if (n == 0) { free(p); return NULL; }
    size_t have = malloc_usable_size(p);
    if (n <= have) return p;
    void *q = malloc(n);
    if (q == NULL) return NULL;
    memcpy(q, p, have);
    free(p);
    return q;
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (align == 0 || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
    void *p = aligned(align, n);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

void *memalign(size_t align, size_t n) { return aligned(align, n); }
void *aligned_alloc(size_t align, size_t n) { return aligned(align, n); }
void *valloc(size_t n) { return aligned(4096, n); }
void *pvalloc(size_t n) { return aligned(4096, (n + 4095) & ~(size_t)4095); }
