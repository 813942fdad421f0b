/* share_c: allocate a buffer in the pool, fill it, print its handle, then
 * (given a handle) retain another process's buffer and print its text.
 *   share_c put TEXT     -> prints the handle, waits for a line on stdin
 *   share_c get HANDLE   -> prints the text stored in the buffer */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memd/memd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: share_c put TEXT | get HANDLE\n");
    return 2;
  }
  if (memd_init(NULL, NULL) != 0) {
    fprintf(stderr, "memd_init: %s\n", memd_last_error());
    return 1;
  }
  if (strcmp(argv[1], "put") == 0) {
    char *copy = memd_strdup(argv[2]);
    if (!copy) {
      fprintf(stderr, "memd_strdup: %s\n", memd_last_error());
      return 1;
    }
    printf("%" PRIu64 "\n", memd_handle(copy));
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) { /* wait until told to go */ }
    memd_freep(&copy);
  } else {
    size_t size = 0;
    const char *text = memd_retain(strtoull(argv[2], NULL, 10), &size);
    if (!text) {
      fprintf(stderr, "memd_retain: %s\n", memd_last_error());
      return 1;
    }
    printf("%s\n", text);
    memd_free((void *)text);
  }
  memd_uninit();
  return 0;
}
