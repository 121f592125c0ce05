/* A target for the SVG chart test: the heap grows in visible steps for about
 * a second (a 1 MiB block every 50 ms, each written so it is also resident),
 * then half of the blocks are freed and the program waits a little so the
 * drop shows, then it frees the rest and exits. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BLOCKS = 20, BLOCK = 1 << 20 };

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int main(void) {
    static char *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        if (!blocks[i]) {
            fprintf(stderr, "svg_target: out of memory\n");
            return 1;
        }
        memset(blocks[i], i + 1, BLOCK);
        sleep_ms(50);
    }
    for (int i = 0; i < BLOCKS; i += 2) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    sleep_ms(200);
    for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
    return 0;
}
