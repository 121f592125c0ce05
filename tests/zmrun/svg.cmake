# zmrun's SVG chart rendered in headless Chromium and checked as a picture
# (check_svg.sh, check_png.py). Included from tests/zmrun/CMakeLists.txt,
# where the zmrun target exists. Skipped (77) without chromium or python3.
add_executable(zmrun_svg_target ${CMAKE_CURRENT_LIST_DIR}/svg_target.c)
add_test(NAME zmrun_svg_chromium
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/check_svg.sh $<TARGET_FILE:zmrun>
                 $<TARGET_FILE:zmrun_svg_target> ${CMAKE_CURRENT_BINARY_DIR}/svg_chromium)
set_tests_properties(zmrun_svg_chromium PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS zmrun)
