export { imagesSchema } from './schema.ts';
export {
  buildImage,
  listImages,
  findImage,
  getImage,
  removeImage,
  importImage,
  type ImportImageOptions,
  type ImageRecord,
  type BuildImageOptions,
} from './build.ts';
export { recipeNames, type RecipeName } from './recipes.ts';
export { assetsDir } from './rootfs.ts';
export { hostDebianMirror, basePackages } from './debian-system.ts';
export { debootstrapLine, type ImageBuildPhase, type ImageProgress } from './progress.ts';
