/* A statically linked program: zmrun must refuse it (nothing to interpose). */
int main(void) { return 0; }
