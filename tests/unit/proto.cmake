# SPDX-License-Identifier: BSD-3-Clause
# Unit tests of core/lib and core/proto added with issue 11 (included from
# tests/CMakeLists.txt; the older codec tests are registered there).
foreach(t envelope slotfile ekcert migration resumetag migwire)
  add_executable(test_${t} unit/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE vtpm_proto PkgConfig::CMOCKA)
  add_test(NAME unit_${t} COMMAND test_${t})
  set_tests_properties(unit_${t} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()
