/** Building image manifests and configs, in the OCI or the Docker schema2 family. */
import { MediaTypes, layerMediaType, type Compression } from '../oci/mediatype.js'
import type { Digest } from '../oci/digest.js'
import type { Descriptor, ImageConfig, ImageManifest } from '../oci/types.js'

export const ManifestFormats = { docker: 'docker', oci: 'oci' } as const
export type ManifestFormat = (typeof ManifestFormats)[keyof typeof ManifestFormats]

/**
 * Serialises a manifest as Docker and distribution do (three-space indentation), so that
 * sizes and digests look like Docker's for the same content.
 */
export function serializeManifest(m: ImageManifest): string {
  return JSON.stringify(m, null, 3)
}

/** Image configs are written compactly, in a fixed key order, as Docker writes them. */
export function serializeConfig(c: ImageConfig): string {
  return JSON.stringify(c)
}

export function buildManifest(format: ManifestFormat, config: { digest: Digest; size: number }, layers: Descriptor[]): ImageManifest {
  if (format === 'docker') {
    return {
      schemaVersion: 2,
      mediaType: MediaTypes.DockerManifest,
      config: { mediaType: MediaTypes.DockerConfig, size: config.size, digest: config.digest },
      layers,
    }
  }
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    config: { mediaType: MediaTypes.OciConfig, size: config.size, digest: config.digest },
    layers,
  }
}

export function manifestMediaType(format: ManifestFormat): string {
  return format === 'docker' ? MediaTypes.DockerManifest : MediaTypes.OciManifest
}

export function layerDescriptor(format: ManifestFormat, compression: Compression, blob: { digest: Digest; size: number }): Descriptor {
  return { mediaType: layerMediaType(compression, format), size: blob.size, digest: blob.digest }
}

/** The same manifest with OCI media types (blobs unchanged): what an OCI layout must hold. */
export function toOciManifest(m: ImageManifest): ImageManifest {
  const mapLayer = (mt: string): string => {
    switch (mt) {
      case MediaTypes.DockerLayerGzip:
        return MediaTypes.OciLayerGzip
      case MediaTypes.DockerLayer:
        return MediaTypes.OciLayer
      case MediaTypes.DockerLayerForeign:
        return MediaTypes.OciLayerNondistributableGzip
      default:
        return mt
    }
  }
  const out: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    config: { ...m.config, mediaType: m.config.mediaType === MediaTypes.DockerConfig ? MediaTypes.OciConfig : m.config.mediaType },
    layers: m.layers.map((l) => ({ ...l, mediaType: mapLayer(l.mediaType) })),
  }
  if (m.annotations) out.annotations = m.annotations
  return out
}
