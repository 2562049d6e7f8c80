# Model zoo (issue #7, Python side): models/export.py, models/cornet.py, models/clip_standin.py.
# Python-driven tests (Debian's /usr/bin/python3 with torch 1.13 / torchvision 0.14), label `zoo`.
# A dozen small torchvision architectures export with random weights and match eager torchvision;
# the big ones (vgg, vit_l/h, regnet_y_128gf, ...) are left to scripts/export_all.sh.
set(TV_ZOO_DIR ${PROJECT_SOURCE_DIR}/tests/reference)
set(TV_ZOO_WORK ${TV_TEST_DATA_DIR}/zoo)

function(tv_zoo_test name script)
  add_test(NAME ${name} COMMAND ${THINGSVISION_PYTHON} ${TV_ZOO_DIR}/${script} ${TV_ZOO_WORK} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS zoo TIMEOUT 300
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;OMP_NUM_THREADS=1")
endfunction()

# architecture + input side (ViTs need their 224 image size)
foreach(spec resnet18:112 squeezenet1_1:112 mobilenet_v2:112 mobilenet_v3_small:112
             shufflenet_v2_x0_5:112 mnasnet0_5:112 efficientnet_b0:112 regnet_x_400mf:112
             densenet121:112 googlenet:112 convnext_tiny:96 swin_t:112 vit_b_32:224)
  string(REPLACE ":" ";" parts ${spec})
  list(GET parts 0 arch)
  list(GET parts 1 side)
  tv_zoo_test(zoo_export_${arch} zoo_export_test.py ${arch} ${side})
endforeach()
foreach(arch cornet_z cornet_r cornet_rt cornet_s)
  tv_zoo_test(zoo_${arch} zoo_cornet_test.py ${arch})
endforeach()
foreach(arch clip_rn50_standin clip_vit_b32_standin)
  tv_zoo_test(zoo_${arch} zoo_clip_test.py ${arch})
endforeach()
tv_zoo_test(zoo_list zoo_list_test.py)
tv_zoo_test(zoo_sidecar zoo_sidecar_test.py)
tv_zoo_test(zoo_weights zoo_weights_test.py)
tv_zoo_test(zoo_onnx zoo_onnx_test.py)
