# Configures, builds and runs the consumer project against a Lighter build tree (called by CTest).
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
                        -Dlighter_DIR=${lighter_DIR} -DTorch_DIR=${Torch_DIR}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumer: configure failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumer: build failed")
endif()
execute_process(COMMAND ${BINARY}/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumer: run failed (${rc})")
endif()
