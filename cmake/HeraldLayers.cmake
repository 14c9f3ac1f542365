# The layers, enforced by the compiler: each library target compiles against a view of the tree
# (build/layers/<layer>/) that holds only its own layer's headers and those of the layers below
# it, as symbolic links, so an upward #include fails to compile ("No such file"), not just to link.
#
#   herald_layer(<layer> HEADERS <include/herald/*.h of this layer>
#                        INTERNAL <paths under src/ of this layer>
#                        BELOW <layers it may use>)
#
# herald_library(herald_<layer> …) then compiles with that view. The public view
# (build/layers/<layer>/include) is the target's interface, so a layer above sees it through
# target_link_libraries; the internal view (build/layers/<layer>/src) stays private. Every public
# header must belong to a layer: a new one that does not stops the configure step.
# tests/layering proves the rule with deliberate upward includes.

set(HERALD_LAYERS_DIR ${PROJECT_BINARY_DIR}/layers CACHE INTERNAL "The layers' include views (cmake/HeraldLayers.cmake)")

function(herald_layer layer)
  cmake_parse_arguments(L "" "" "HEADERS;INTERNAL;BELOW" ${ARGN})
  set(headers ${L_HEADERS})
  set(internal ${L_INTERNAL})
  foreach(below IN LISTS L_BELOW)
    get_property(known GLOBAL PROPERTY herald_layer_${below}_defined)
    if(NOT known)
      message(FATAL_ERROR "layer ${layer}: the layer below it, '${below}', is not defined (yet)")
    endif()
    get_property(h GLOBAL PROPERTY herald_layer_${below}_headers)
    get_property(i GLOBAL PROPERTY herald_layer_${below}_internal)
    list(APPEND headers ${h})
    list(APPEND internal ${i})
  endforeach()
  list(REMOVE_DUPLICATES headers)
  list(REMOVE_DUPLICATES internal)
  set_property(GLOBAL PROPERTY herald_layer_${layer}_defined TRUE)
  set_property(GLOBAL PROPERTY herald_layer_${layer}_headers ${headers})
  set_property(GLOBAL PROPERTY herald_layer_${layer}_internal ${internal})
  set_property(GLOBAL APPEND PROPERTY herald_layer_all_headers ${L_HEADERS})

  set(view ${HERALD_LAYERS_DIR}/${layer})
  file(REMOVE_RECURSE ${view})
  file(MAKE_DIRECTORY ${view}/include/herald ${view}/src)
  foreach(h IN LISTS headers)
    if(h STREQUAL "version.h")
      set(target_path ${PROJECT_BINARY_DIR}/include/herald/version.h)  # generated
    else()
      set(target_path ${PROJECT_SOURCE_DIR}/include/herald/${h})
      if(NOT EXISTS ${target_path})
        message(FATAL_ERROR "layer ${layer}: include/herald/${h} does not exist")
      endif()
    endif()
    file(CREATE_LINK ${target_path} ${view}/include/herald/${h} SYMBOLIC)
  endforeach()
  foreach(p IN LISTS internal)
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/src/${p})
      message(FATAL_ERROR "layer ${layer}: src/${p} does not exist")
    endif()
    get_filename_component(parent ${view}/src/${p} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${p} ${view}/src/${p} SYMBOLIC)
  endforeach()
endfunction()

# Stops the configure step when a public header belongs to no layer.
function(herald_check_every_header_has_a_layer)
  get_property(assigned GLOBAL PROPERTY herald_layer_all_headers)
  file(GLOB present RELATIVE ${PROJECT_SOURCE_DIR}/include/herald ${PROJECT_SOURCE_DIR}/include/herald/*.h)
  foreach(h IN LISTS present)
    if(NOT h IN_LIST assigned)
      message(FATAL_ERROR "include/herald/${h} belongs to no layer: add it to a herald_layer() in src/CMakeLists.txt")
    endif()
  endforeach()
endfunction()
