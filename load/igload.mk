# load/igload: issue 19's load generator (load/igload/README.md), an
# nghttp2 client on libevent linked against the library as the unit tests
# are; beside the gateway's binary (bin/igload; under SANITIZE=1
# build/san/igload). make all builds it.
IGLOAD_OBJ := $(patsubst load/igload/%.c,$(BUILD)/obj/igload/%.o,$(wildcard load/igload/*.c))
IGLOAD := $(dir $(BIN))igload

# (a tree without the sources, e.g. an image's build context, skips it)
ifneq ($(IGLOAD_OBJ),)
all: $(IGLOAD)
endif

$(BUILD)/obj/igload/%.o: load/igload/%.c $(BUILD)/.build_opts $(BUILD)/gen/infergate/build.h
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(IGLOAD): $(IGLOAD_OBJ) $(BUILD)/libinfergate.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: igload
igload: $(IGLOAD)

-include $(IGLOAD_OBJ:.o=.d)
