/** Whiteout conventions of the OCI image spec and of overlayfs. */

/** `.wh.<name>` in a layer deletes `<name>` from the layers below. */
export const WHITEOUT_PREFIX = '.wh.'
/** Names starting with this are AUFS metadata (`.wh..wh.plnk`, …), never content. */
export const WHITEOUT_META_PREFIX = '.wh..wh.'
/** `.wh..wh..opq` in a directory hides everything the layers below have in it. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq'

/** The overlayfs xattr that marks an upper directory opaque (value `y`). */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque'
/** Prefixes of overlayfs' private xattrs (the `user.` form is used by rootless/userxattr mounts). */
export const OVERLAY_XATTR_PREFIXES = ['trusted.overlay.', 'user.overlay.'] as const

/** How whiteouts are represented on disk when unpacking. */
export type WhiteoutMode = 'oci' | 'overlay'
