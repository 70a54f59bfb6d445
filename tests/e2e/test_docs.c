/*
 * The generated reference docs match the tables the loader validates against: the
 * node-types page and every settings table in docs/connectors/. Run from the repository
 * root, as `make test` does. `make docs` fixes a failure here.
 */
#include "../support/e2e.h"

Test(docs, node_types_page_is_current) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' types --markdown | cmp -s - docs/reference/node-types.md",
           e2e_bin());
  cr_assert_eq(system(cmd), 0, "docs/reference/node-types.md is out of date: run `make docs`");
}

Test(docs, connector_pages_match_their_tables) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "scripts/connector-docs --check '%s'", e2e_bin());
  cr_assert_eq(system(cmd), 0, "a page in docs/connectors/ is out of date: run `make docs`");
}
