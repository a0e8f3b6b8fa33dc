# Script of the install test (see CMakeLists.txt here). Every step stops the test with
# the failing step's output, so a broken export or config file shows what went wrong.
cmake_minimum_required(VERSION 3.25)

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run_step("cmake --install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

# Only the scratch prefix may satisfy find_package: no package registry, no system xgrad.
run_step("configuring the consumer"
  ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}"
    "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
if(NOT step_output MATCHES "xgrad found in ${prefix}/")
  message(FATAL_ERROR "the consumer did not find xgrad in the scratch prefix:\n${step_output}")
endif()
run_step("building the consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run_step("running the consumer" "${WORK_DIR}/build/xgrad_consumer")

message(STATUS "consumer printed: ${step_output}")
# f(a, b) = sum(a * b + a^2) at a = [[3, -1]], b = [[4, 2]]:
# df/da = b + 2a = [[10, 0]], df/db = a = [[3, -1]].
if(NOT step_output STREQUAL "df/da = 10 0\ndf/db = 3 -1\n")
  message(FATAL_ERROR "wrong gradient from the installed xgrad:\n${step_output}")
endif()
