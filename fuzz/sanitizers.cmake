# Included by the top-level CMakeLists.txt when TG_FUZZ is ON, before any
# target: every object of the tree (libraries, unit tests, fuzz targets) is
# built with AddressSanitizer and UndefinedBehaviorSanitizer, plus libFuzzer's
# coverage instrumentation so the fuzz targets see inside the libraries.
# Assertions stay on (no NDEBUG): a failed RapidJSON assertion is a bug the
# fuzzer should report, not undefined behaviour it should skip past.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "TG_FUZZ needs clang: configure with CC=clang-16 CXX=clang++-16")
endif()
set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O1 -g" CACHE STRING "" FORCE)
add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                    -fsanitize-ignorelist=${CMAKE_CURRENT_LIST_DIR}/ubsan_ignorelist.txt
                    -fsanitize=fuzzer-no-link -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
# Boost's own BOOST_ASSERTs are off (as in release builds): Boost 1.74's Beast
# asserts `n >= 5` in basic_parser::parse_chunk_header although a streamed
# chunk header can legitimately present 3 or 4 bytes again after need_more
# (fixed upstream in Beast PR 2861; the code after the assert handles it).
# Our own assert()s and RapidJSON's stay on.
add_compile_definitions(BOOST_DISABLE_ASSERTS)
