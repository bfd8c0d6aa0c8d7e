# SPDX-License-Identifier: BSD-3-Clause
# vtpmctl's own code: core/proto/quote.c, the offline quote check.
# Included from tests/CMakeLists.txt (paths are relative to tests/).
#   unit_quote             quotes made and signed in the test (OpenSSL)
#   integ_quote_tpm2_tools quotes a swtpm makes through tpm2-tools
add_executable(test_quote unit/test_quote.c)
target_link_libraries(test_quote PRIVATE vtpm_proto PkgConfig::CMOCKA)
add_test(NAME unit_quote COMMAND test_quote)
set_tests_properties(unit_quote PROPERTIES LABELS unit TIMEOUT 120)

add_test(NAME integ_quote_tpm2_tools
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/unit/quote_tpm2_tools.sh
          $<TARGET_FILE:test_quote>)
set_tests_properties(integ_quote_tpm2_tools PROPERTIES LABELS integration
  TIMEOUT 300)
