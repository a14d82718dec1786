# Janus: build, run, test and measure.
#
#   make run         build everything and boot both personalities in QEMU, with
#                    Janus' disk (target/images/disk.img, made on first use)
#   make test        every check: format, lints, host unit tests, QEMU integration tests
#   make bench       measure and write target/bench/report.json
#   make disk-reset  remake Janus' disk, DESTROYING everything the personalities wrote
#
# They install what they need when it is missing (rustup target and component,
# Debian's qemu-system-arm and e2fsprogs).

SHELL := /bin/bash
CARGO ?= cargo
HYP_TARGET := aarch64-unknown-none-softfloat
GUEST_TARGET := aarch64-unknown-none
IMAGES := target/images
QEMU := qemu-system-aarch64
QEMU_MACHINE := -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 4 -m 2G -nographic
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all prereqs images run run-probe test unit-tests lint qemu-tests bench fuzz clean \
	disk disk-reset

all: images

# --- prerequisites ---------------------------------------------------------
prereqs: .prereqs-rust .prereqs-qemu .prereqs-e2fs

.prereqs-rust:
	@rustup target list --installed | grep -qx $(HYP_TARGET) || rustup target add $(HYP_TARGET)
	@rustup target list --installed | grep -qx $(GUEST_TARGET) || rustup target add $(GUEST_TARGET)
	@rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

.prereqs-qemu:
	@command -v $(QEMU) >/dev/null || { $(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y qemu-system-arm; }

# mkfs.ext4 for janus-disk; it lives in /sbin, which a user's PATH may lack.
.prereqs-e2fs:
	@command -v mkfs.ext4 >/dev/null || [ -x /sbin/mkfs.ext4 ] || [ -x /usr/sbin/mkfs.ext4 ] || \
		{ $(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y e2fsprogs; }

.PHONY: .prereqs-rust .prereqs-qemu .prereqs-e2fs

LLVM_BIN = $(shell dirname $$(ls $$(rustc --print sysroot)/lib/rustlib/*/bin/llvm-objcopy | head -n 1))

# --- images ----------------------------------------------------------------
images: .prereqs-rust
	$(CARGO) build --release -p hyp --bin janus --target $(HYP_TARGET)
	$(CARGO) build --release -p probe --target $(GUEST_TARGET)
	mkdir -p $(IMAGES)
	$(LLVM_BIN)/llvm-objcopy -O binary target/$(HYP_TARGET)/release/janus $(IMAGES)/janus.bin
	$(LLVM_BIN)/llvm-objcopy -O binary target/$(GUEST_TARGET)/release/probe $(IMAGES)/probe.bin
	$(CARGO) run --release -q -p janus-pack -- images/configs/probe.toml -o $(IMAGES)/probe.bundle
	$(CARGO) build --release -p janus-pack --bin janus-disk
	$(MAKE) --no-print-directory linux-images
	@echo "images in $(IMAGES): $$(ls $(IMAGES) | tr '\n' ' ')"

# --- linux guests ----------------------------------------------------------
# Debian's arm64 kernel and static busybox (fetched once into target/cache/debian by
# images/fetch-debian.sh), a busybox initramfs per personality (janus-initramfs, /init
# from guests/linux/init.sh) and the bundle of images/personalities.toml.
# `make native-run` boots the kernel with the personal initramfs on QEMU alone (no
# Janus), to check the guest side by itself; quit with `poweroff -f` or Ctrl-a x.
# `make native-run VOLUME=work` boots work's initramfs instead, with the partition
# `work` of $(DISK) attached as the guest's own disk (/dev/vda, mounted on /data),
# as Janus gives it: QEMU's raw driver at the partition's offset and size, which
# `janus-disk layout` prints. That writes to the personality's real volume; give
# DISK=a-copy.img to work on a copy (make one with `cp --sparse=always`).
# `make native-run SHARED=DIR` also attaches QEMU's own virtio-9p server on the
# host folder DIR with the mount tag `shared`, which /init mounts on /shared as
# it mounts Janus' shared folder.
LINUX_CACHE := target/cache/debian
LINUX_PERSONALITIES := personal work
LINUX_MODULES = $(LINUX_CACHE)/kernel/lib/modules/$$(cat $(LINUX_CACHE)/VERSION)
NATIVE_QEMU_MACHINE := -M virt,gic-version=3 -cpu cortex-a72 -smp 2 -m 256M -nographic
VOLUME ?=
SHARED ?=

.PHONY: linux-images native-run

linux-images: .prereqs-rust
	bash images/fetch-debian.sh
	mkdir -p $(IMAGES)
	for name in $(LINUX_PERSONALITIES); do \
		$(CARGO) run --release -q -p janus-pack --bin janus-initramfs -- \
			--name $$name --busybox $(LINUX_CACHE)/busybox --modules $(LINUX_MODULES) \
			-o $(IMAGES)/$$name.cpio || exit 1; \
	done
	$(CARGO) run --release -q -p janus-pack --bin janus-pack -- \
		images/personalities.toml -o $(IMAGES)/linux.bundle
	@echo "linux images: kernel $$(cat $(LINUX_CACHE)/VERSION)," \
		"$(foreach name,$(LINUX_PERSONALITIES),$(IMAGES)/$(name).cpio) $(IMAGES)/linux.bundle"

native-run: linux-images .prereqs-qemu $(if $(VOLUME),disk)
	@volume=(); \
	if [ -n "$(VOLUME)" ]; then \
		read -r offset size < <($(JANUS_DISK) layout $(DISK) | \
			awk -v name='$(VOLUME)' '$$1 == name { print $$2, $$3 }'); \
		[ -n "$$offset" ] || { echo "$(DISK) has no partition $(VOLUME)" >&2; exit 1; }; \
		volume=(-drive driver=raw,file.filename=$(DISK),offset=$$offset,size=$$size,if=none,id=volume \
			-device virtio-blk-device,drive=volume); \
	fi; \
	shared=(); \
	if [ -n "$(SHARED)" ]; then \
		shared=(-fsdev local,id=shared,path=$(SHARED),security_model=none \
			-device virtio-9p-device,fsdev=shared,mount_tag=shared); \
	fi; \
	set -x; $(QEMU) $(NATIVE_QEMU_MACHINE) -kernel $(LINUX_CACHE)/Image \
		-initrd $(IMAGES)/$(or $(VOLUME),personal).cpio -append "console=ttyAMA0 rdinit=/init" \
		"$${volume[@]}" "$${shared[@]}"

# --- disk ------------------------------------------------------------------
# Janus' disk: a GPT image with a partition per personality volume (ext4), then
# `shared` and `janus` (see images/README.md). `make disk` makes it from
# $(LINUX_CONFIG) when it is missing; once it exists it holds what the
# personalities wrote, so it is only checked against the config (janus-disk
# check stops when they disagree) and never rewritten.
DISK ?= $(IMAGES)/disk.img
LINUX_CONFIG := images/personalities.toml
JANUS_DISK := target/release/janus-disk
QEMU_DISK = -drive if=none,id=disk,format=raw,file=$(DISK) -device virtio-blk-device,drive=disk

$(JANUS_DISK): .prereqs-rust
	$(CARGO) build --release -p janus-pack --bin janus-disk

.PHONY: $(JANUS_DISK) .disk-for-tests

disk: $(JANUS_DISK) .prereqs-e2fs
	@if [ -e $(DISK) ]; then \
		$(JANUS_DISK) check $(LINUX_CONFIG) $(DISK); \
	else \
		mkdir -p $(dir $(DISK)) && $(JANUS_DISK) create $(LINUX_CONFIG) -o $(DISK); \
	fi

# DESTROYS Janus' disk and everything the personalities wrote on it, and makes it
# anew from $(LINUX_CONFIG). The only command that ever overwrites it.
disk-reset: $(JANUS_DISK) .prereqs-e2fs
	@echo "disk-reset: destroying $(DISK) and making it anew from $(LINUX_CONFIG)"
	mkdir -p $(dir $(DISK))
	$(JANUS_DISK) create --replace $(LINUX_CONFIG) -o $(DISK)

# The QEMU tests copy the default disk and never use it in place; they need one
# to copy. A missing one is made (nothing is lost); an existing one is left exactly
# as it is, not even checked.
.disk-for-tests: $(JANUS_DISK) .prereqs-e2fs
	@[ -e $(DISK) ] || { mkdir -p $(dir $(DISK)) && $(JANUS_DISK) create $(LINUX_CONFIG) -o $(DISK); }

# --- run -------------------------------------------------------------------
# Both Linux personalities, `personal` in the foreground, with Janus' disk.
# Ctrl-] Tab switches; Ctrl-a x quits QEMU.
run: images disk .prereqs-qemu
	$(QEMU) $(QEMU_MACHINE) -kernel $(IMAGES)/janus.bin -initrd $(IMAGES)/linux.bundle $(QEMU_DISK)

# The two bare-metal probe personalities (isolation attacks, benchmarks).
run-probe: images .prereqs-qemu
	$(QEMU) $(QEMU_MACHINE) -kernel $(IMAGES)/janus.bin -initrd $(IMAGES)/probe.bundle

# --- test ------------------------------------------------------------------
test: prereqs lint unit-tests images qemu-tests

lint: .prereqs-rust
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p hyp -p platform --target $(HYP_TARGET) -- -D warnings
	$(CARGO) clippy -p probe --target $(GUEST_TARGET) -- -D warnings

unit-tests:
	$(CARGO) test -p hyp -p platform -p janus-pack

qemu-tests: images .disk-for-tests .prereqs-qemu
	$(CARGO) test -p qemu-virt-tests -- --test-threads=2

# --- bench -----------------------------------------------------------------
bench: images .prereqs-qemu
	$(CARGO) run --release -q -p qemu-virt-tests --bin bench

# --- fuzz ------------------------------------------------------------------
# Coverage-guided fuzzing of the parsers of guest and loader bytes (hyp/fuzz),
# on stable Rust without a sanitizer; FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := bundle esr guest_mmio console gpt virtio_blk store_mount audit_log p9_codec p9_server

fuzz: .prereqs-rust
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd hyp && for target in $(FUZZ_TARGETS); do \
		$(CARGO) fuzz run -s none $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	$(CARGO) clean
