// Browsers have no bundled sample images to fall back to: pages load images from bytes or over HTTP.
export function sampleImagesDir(): string | undefined {
  return undefined;
}

export function sampleImagePath(_name: string): string | undefined {
  return undefined;
}

export function sampleImageNames(): string[] {
  return [];
}
