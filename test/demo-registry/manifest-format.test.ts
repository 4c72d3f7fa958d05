import { accepts, isIndexType, parseManifest, MANIFEST_TYPES } from '../../demo-registry/manifest-format';
import { DOCKER_LAYER, tinyImage, tinyIndex } from '../helpers/oci';

describe('parseManifest', () => {
  it('lists the blobs of an image manifest, leaving out non-distributable layers with urls', () => {
    const img = tinyImage({ format: 'docker' });
    const doc = JSON.parse(img.manifest.bytes.toString());
    doc.layers.push({ mediaType: DOCKER_LAYER, size: 1, digest: 'sha256:' + 'f'.repeat(64), urls: ['https://example.com/layer'] });
    const parsed = parseManifest(`${MANIFEST_TYPES.dockerManifest}; charset=utf-8`, Buffer.from(JSON.stringify(doc)));
    expect(parsed).toEqual({ mediaType: MANIFEST_TYPES.dockerManifest, blobs: img.blobs.map((b) => b.digest), manifests: [] });
  });

  it('lists the child manifests of an index', () => {
    const img = tinyImage();
    const parsed = parseManifest(MANIFEST_TYPES.ociIndex, tinyIndex([img]).bytes);
    expect(parsed).toEqual({ mediaType: MANIFEST_TYPES.ociIndex, blobs: [], manifests: [img.manifest.digest] });
    expect(isIndexType(parsed.mediaType)).toBe(true);
  });

  it('infers the type of a manifest without mediaType from its shape when the Content-Type is generic', () => {
    const img = tinyImage();
    const doc = JSON.parse(img.manifest.bytes.toString());
    delete doc.mediaType;
    expect(parseManifest(undefined, Buffer.from(JSON.stringify(doc))).mediaType).toBe(MANIFEST_TYPES.ociManifest);
    const index = JSON.parse(tinyIndex([img]).bytes.toString());
    delete index.mediaType;
    expect(parseManifest('application/json', Buffer.from(JSON.stringify(index))).mediaType).toBe(MANIFEST_TYPES.ociIndex);
  });

  it('names the field that is wrong', () => {
    const doc = JSON.parse(tinyImage().manifest.bytes.toString());
    doc.layers[0].size = 1.5;
    expect(() => parseManifest(MANIFEST_TYPES.ociManifest, Buffer.from(JSON.stringify(doc)))).toThrow(
      'manifest invalid: layers[0].size must be a whole number of bytes, got 1.5',
    );
  });
});

describe('accepts', () => {
  it('takes the listed type, wildcards, or anything without an Accept header', () => {
    expect(accepts(undefined, MANIFEST_TYPES.ociIndex)).toBe(true);
    expect(accepts(`${MANIFEST_TYPES.dockerManifest}, ${MANIFEST_TYPES.ociIndex};q=0.5`, MANIFEST_TYPES.ociIndex)).toBe(true);
    expect(accepts('*/*', MANIFEST_TYPES.ociManifest)).toBe(true);
    expect(accepts(MANIFEST_TYPES.dockerManifest, MANIFEST_TYPES.ociManifest)).toBe(false);
  });
});
