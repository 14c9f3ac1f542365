# Compiles a one-line file, #include "<HEADER>", with only the include paths of layer LAYER's view
# (build/layers/<LAYER>/include and …/src) and checks the outcome against EXPECT:
#   compiles  the header is the layer's own or below it: it must compile;
#   refused   the header is above the layer (or beside it): the compiler must say it cannot find
#             that very header — any other failure (a bad flag, a syntax error) fails the check.
# Run by CTest: cmake -DCXX=… -DLAYERS_DIR=… -DLAYER=… -DHEADER=… -DEXPECT=… -DWORK_DIR=… -P check_include.cmake
foreach(v CXX LAYERS_DIR LAYER HEADER EXPECT WORK_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_include.cmake: -D${v}=… is required")
  endif()
endforeach()
if(NOT IS_DIRECTORY ${LAYERS_DIR}/${LAYER}/include)
  message(FATAL_ERROR "no view for layer '${LAYER}' in ${LAYERS_DIR}")
endif()
string(MAKE_C_IDENTIFIER "${LAYER}_${HEADER}" stem)
set(source ${WORK_DIR}/${stem}.cpp)
file(WRITE ${source} "#include \"${HEADER}\"\n")
execute_process(
  COMMAND ${CXX} -std=c++20 -fsyntax-only -I${LAYERS_DIR}/${LAYER}/include -I${LAYERS_DIR}/${LAYER}/src ${source}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(EXPECT STREQUAL "compiles")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "layer ${LAYER} cannot include its own or a lower header ${HEADER}:\n${err}")
  endif()
  message(STATUS "layer ${LAYER} includes ${HEADER}: compiles, as it must")
elseif(EXPECT STREQUAL "refused")
  if(rc EQUAL 0)
    message(FATAL_ERROR "layer ${LAYER} can include ${HEADER}, which is above it: the layering is not enforced")
  endif()
  string(FIND "${err}" "${HEADER}: No such file or directory" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "layer ${LAYER} including ${HEADER} failed, but not for want of the header:\n${err}")
  endif()
  message(STATUS "layer ${LAYER} includes ${HEADER}: refused, as it must be")
else()
  message(FATAL_ERROR "EXPECT must be compiles or refused, not '${EXPECT}'")
endif()
