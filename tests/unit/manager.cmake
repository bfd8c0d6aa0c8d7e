# SPDX-License-Identifier: BSD-3-Clause
# Unit tests of core/manager's machinery (task queue, group commit and NV
# counter binding, supervisor backoff, control command handlers), against
# a fake clock and a fake physical TPM (unit/mgr_fixture.h); the real TPM
# path is covered by tests/hal and the integration tests.
foreach(t mgr_commit mgr_supervisor mgr_control mgr_link mgr_swtpm)
  add_executable(test_${t} unit/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE vtpm_manager PkgConfig::CMOCKA)
  add_test(NAME unit_${t} COMMAND test_${t})
  set_tests_properties(unit_${t} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()
# The manager's side of XEN_PEER/XEN_PEER_STATE (xenmgr.c) against a Xen
# that is a table: who may learn a guest's Xen UUID and run state.
add_executable(test_mgrproto_xenpeer unit/test_mgrproto_xenpeer.c)
target_link_libraries(test_mgrproto_xenpeer PRIVATE vtpm_manager PkgConfig::CMOCKA)
add_test(NAME unit_mgrproto_xenpeer COMMAND test_mgrproto_xenpeer)
set_tests_properties(unit_mgrproto_xenpeer PROPERTIES LABELS unit TIMEOUT 60)
