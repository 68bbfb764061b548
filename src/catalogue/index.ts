/** The patch catalogue (patch table, SPEC §3 Fig. 6): verified patch files and their state per LC. */
export { catalogueSchema } from './schema.ts';
export {
  createCatalogue,
  validatePatchName,
  parsePatchFormat,
  type Catalogue,
  type CatalogueOptions,
  type RegisterPatchOptions,
} from './catalogue.ts';
export { sha256File, sha256Hex } from './hash.ts';
export { checkPatchFile } from './check-file.ts';
export {
  patchCategories,
  patchFormats,
  type Patch,
  type PatchCategory,
  type PatchFormat,
  type PatchLcState,
  type PatchResult,
  type PatchResultState,
} from './types.ts';
export { patchesDirOf } from './paths.ts';
