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
tv_zoo_test(zoo_serve zoo_serve_test.py)
tv_zoo_test(zoo_suggested zoo_suggested_test.py)

# THINGSvision's model sources (issue 18): `export.py --source S --model N`, then tv-extract on the
# example images against an independent reference computed in the test (timm / open_clip /
# torchvision models with the archive's or the synthetic checkpoint's tensors, the library's own eval
# transform, forward hooks); with THINGSVISION_REFERENCE_PATH (the PYTHONPATH of THINGSvision's
# released source, e.g. src:deps:bench/thingsvision_stubs of scripts/setup-thingsvision.sh) also
# against THINGSvision's extract_features. A case this python or LibTorch cannot run exits 77 with
# the reason (timm/open_clip missing: Debian's python; LibTorch 1.13 and torch 2.x archives).
set(THINGSVISION_REFERENCE_PATH "" CACHE STRING
    "PYTHONPATH of THINGSvision's source for the zoo_source_* parity checks (empty: not compared)")
if(TARGET tv-extract)
  foreach(case timm_deit_tiny timm_deit_tokens timm_eva02_tiny timm_resnet18 timm_convnext_atto
               timm_efficientnet_b0 timm_tnt_s_merged_rows timm_convnextv2_nano_squash ssl_simclr_rn50 ssl_barlowtwins_rn50
               ssl_dino_vit_small_p16 ssl_dinov2_vit_small_p14 ssl_mae_vit_base_p16
               custom_alexnet_ecoset custom_inception_ecoset custom_openclip_vit_b_32
               custom_openclip_vitamin_s custom_openclip_coca_vit_b_32 custom_clip_rn50
               custom_openclip_roberta_vit_b_32)
    add_test(NAME zoo_source_${case}
             COMMAND env TV_EXTRACT=$<TARGET_FILE:tv-extract>
                     TV_THINGSVISION_PATH=${THINGSVISION_REFERENCE_PATH}
                     ${THINGSVISION_PYTHON} ${TV_ZOO_DIR}/zoo_sources_test.py ${TV_ZOO_WORK} ${case})
    set_tests_properties(zoo_source_${case} PROPERTIES LABELS zoo TIMEOUT 900 SKIP_RETURN_CODE 77
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;OMP_NUM_THREADS=2")
  endforeach()
endif()
tv_zoo_test(zoo_ssl_layouts zoo_ssl_layouts_test.py)
set_tests_properties(zoo_ssl_layouts PROPERTIES TIMEOUT 900)  # eleven ResNet-50 exports
