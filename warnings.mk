# The compiler warnings of every build of the C sources: the module and the
# unit tests (Makefile.am), the benchmarks (bench/Makefile) and the fuzz
# targets (fuzz/Makefile) all include this file.
WARNINGS = -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wmissing-prototypes
