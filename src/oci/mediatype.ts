/** Media types of the OCI image specification and Docker's schema2. */
export const MediaTypes = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeign: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const

export type MediaType = (typeof MediaTypes)[keyof typeof MediaTypes]

export const Compressions = { none: 'none', gzip: 'gzip', zstd: 'zstd' } as const
export type Compression = (typeof Compressions)[keyof typeof Compressions]

export function isIndexMediaType(mt: string): boolean {
  return mt === MediaTypes.OciIndex || mt === MediaTypes.DockerManifestList
}

export function isManifestMediaType(mt: string): boolean {
  return mt === MediaTypes.OciManifest || mt === MediaTypes.DockerManifest
}

/** The compression a layer media type declares. */
export function layerCompression(mt: string): Compression {
  if (mt.endsWith('+gzip') || mt.endsWith('.tar.gzip')) return 'gzip'
  if (mt.endsWith('+zstd')) return 'zstd'
  return 'none'
}

/** The layer media type for a compression, in the OCI or the Docker family. */
export function layerMediaType(compression: Compression, family: 'oci' | 'docker'): MediaType {
  if (family === 'docker') {
    if (compression === 'zstd') return MediaTypes.OciLayerZstd // Docker has no zstd type of its own
    return compression === 'gzip' ? MediaTypes.DockerLayerGzip : MediaTypes.DockerLayer
  }
  if (compression === 'zstd') return MediaTypes.OciLayerZstd
  return compression === 'gzip' ? MediaTypes.OciLayerGzip : MediaTypes.OciLayer
}
