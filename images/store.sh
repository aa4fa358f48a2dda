# Sourced by images/build.sh and images/test.sh: buildah and podman share one container store of
# Orderly's own (vfs, as the machine notes advise), apart from the machine's default store, whose
# podman database other users may have set to another driver. Override with ORDERLY_IMAGES_STORE.
STORE=${ORDERLY_IMAGES_STORE:-/var/lib/orderly-images}
STORE_FLAGS=(--root "$STORE/storage" --runroot "$STORE/run" --storage-driver vfs)
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
bah() { buildah "${STORE_FLAGS[@]}" "$@"; }
pod() { podman "${STORE_FLAGS[@]}" "$@"; }
