/* A control for emulated test runs (scripts/test-all.sh): four threads of
 * plain malloc, calloc, realloc and free, no zmalloc at all. When a test
 * times out under qemu-user, this runs under the same qemu: if it hangs too,
 * the hang is the emulator's, and the test is reported as skipped with that
 * reason instead of failing the run. Exits 0 when every thread finished. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4, ROUNDS = 20000 };

static void *churn(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg * 2654435761u + 1;
    void *keep[64] = {0};
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t slot = (seed >> 33) % 64, size = (seed >> 40) % 2000 + 1;
        switch ((seed >> 20) % 3) {
        case 0: free(keep[slot]); keep[slot] = malloc(size); break;
        case 1: free(keep[slot]); keep[slot] = calloc(1, size); break;
        default: {
            void *p = realloc(keep[slot], size);
            if (p) keep[slot] = p;
        }
        }
        if (keep[slot]) memset(keep[slot], 1, 1);
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)i) != 0) return 2;
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    return 0;
}
