# SPDX-License-Identifier: BSD-3-Clause
# Unit tests of the instance role (core/instance), included by
# tests/CMakeLists.txt.
find_package(Threads REQUIRED)

# The job queue against a fake engine (a real libuv loop and worker).
add_executable(test_jobq unit/test_jobq.c)
target_link_libraries(test_jobq PRIVATE vtpm_instance PkgConfig::CMOCKA
  Threads::Threads)
add_test(NAME unit_jobq COMMAND test_jobq)
set_tests_properties(unit_jobq PROPERTIES LABELS unit TIMEOUT 120)

# The off-loop worker: a thread only while there is work.
add_executable(test_worker unit/test_worker.c)
target_link_libraries(test_worker PRIVATE vtpm_instance PkgConfig::CMOCKA
  Threads::Threads)
add_test(NAME unit_worker COMMAND test_worker)
set_tests_properties(unit_worker PROPERTIES LABELS unit TIMEOUT 120)

# engine_load/engine_load_slots: errno and state-file verdict kept apart.
add_executable(test_engine_load unit/test_engine_load.c)
target_link_libraries(test_engine_load PRIVATE vtpm_instance
  PkgConfig::CMOCKA)
add_test(NAME unit_engine_load COMMAND test_engine_load)
set_tests_properties(unit_engine_load PROPERTIES LABELS unit TIMEOUT 120)

# The instance's seccomp lock: allowed calls work, others die of SIGSYS.
add_executable(test_sandbox unit/test_sandbox.c)
target_link_libraries(test_sandbox PRIVATE vtpm_instance PkgConfig::CMOCKA
  Threads::Threads)
add_test(NAME unit_sandbox COMMAND test_sandbox)
set_tests_properties(unit_sandbox PROPERTIES LABELS unit TIMEOUT 120)

# manufacture: its parsers over the real libtpms's answers, every cut and
# flip of them; the platform hierarchy after the instance's Startup.
add_executable(test_manufacture unit/test_manufacture.c)
target_link_libraries(test_manufacture PRIVATE vtpm_instance
  PkgConfig::CMOCKA)
add_test(NAME unit_manufacture COMMAND test_manufacture)
set_tests_properties(unit_manufacture PROPERTIES LABELS unit TIMEOUT 120)

# Xen save/restore on the real libtpms: a volatile state saved with its
# resume tag resumes after a state file round trip; forgotten, it does not.
add_executable(test_xen_resume unit/test_xen_resume.c)
target_link_libraries(test_xen_resume PRIVATE vtpm_instance PkgConfig::CMOCKA)
add_test(NAME unit_xen_resume COMMAND test_xen_resume)
set_tests_properties(unit_xen_resume PROPERTIES LABELS unit TIMEOUT 120)
