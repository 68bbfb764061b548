/**
 * Checks that a patch file exists and is what its format says, before it is registered: the patch
 * run applies it much later, inside a standby, where a wrong file only shows up as a failed run.
 */
import fs from 'node:fs/promises';
import { UnderstudyError, exec, isErrno } from '../core/index.ts';
import type { PatchFormat } from './types.ts';

/** Diffs and scripts are read whole to check them; larger ones are not plausible. */
const textLimitBytes = 64 * 1024 * 1024;

function invalid(file: string, format: PatchFormat, why: string, hint: string): UnderstudyError {
  return new UnderstudyError('PATCH_FILE_INVALID', `${file} is not a valid ${format} patch: ${why}`, {
    hint,
    details: { file, format },
  });
}

/** A unified diff for `patch -p1`: text, with at least one file header pair and one hunk. */
function checkDiff(file: string, data: Buffer): void {
  const hint = 'Make it with `diff -u` or `git diff` (paths relative to the LC root, for patch -p1).';
  if (data.includes(0)) throw invalid(file, 'diff', 'it holds binary data', hint);
  const lines = data.toString('utf8').split('\n');
  const header = lines.findIndex((l, i) => l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ '));
  if (header === -1) throw invalid(file, 'diff', 'it has no "--- a/…" / "+++ b/…" file header', hint);
  if (!lines.slice(header + 2).some((l) => /^@@ -\d+(,\d+)? \+\d+(,\d+)? @@/.test(l)))
    throw invalid(file, 'diff', 'it has no "@@ -l,n +l,n @@" hunk', hint);
}

/** A script run inside the LC: an interpreter line (`#!`) or an ELF executable. */
function checkScript(file: string, data: Buffer): void {
  const elf = data.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  if (!elf && !data.subarray(0, 2).equals(Buffer.from('#!')))
    throw invalid(
      file,
      'script',
      'it starts with neither "#!" nor an ELF header',
      'Start the script with an interpreter line, e.g. #!/bin/sh.',
    );
}

/** A tar archive (any compression tar recognises) that carries the new files under files/. */
async function checkArchive(file: string): Promise<void> {
  const hint =
    'Make it with tar: files/ holds the new files (paths relative to the LC root), manifest.before and manifest.after are optional sha256sum lists.';
  const listing = await exec(['tar', '-tf', file], { okCodes: [0, 2], timeoutMs: 60_000 });
  if (listing.exitCode !== 0)
    throw invalid(file, 'archive', `tar cannot read it (${listing.stderr.trim().split('\n')[0]})`, hint);
  const entries = listing.stdout.split('\n').map((e) => e.replace(/^\.\//, ''));
  if (!entries.some((e) => e.startsWith('files/')))
    throw invalid(file, 'archive', 'it has no files/ directory', hint);
}

/** A Debian binary package dpkg can install: dpkg-deb reads its control data. */
async function checkDeb(file: string): Promise<void> {
  const info = await exec(['dpkg-deb', '--field', file, 'Package', 'Version'], {
    okCodes: [0, 2],
    timeoutMs: 60_000,
  });
  if (info.exitCode !== 0 || !/^Package: \S+/m.test(info.stdout))
    throw invalid(
      file,
      'deb',
      `dpkg-deb cannot read it (${info.stderr.trim().split('\n')[0] ?? 'no control data'})`,
      'Register a Debian binary package (.deb) built with dpkg-deb --build.',
    );
}

/**
 * Throws PATCH_FILE_NOT_FOUND when `file` does not exist, PATCH_FILE_INVALID when it is not a regular
 * file, is empty, or does not hold a patch of `format`.
 */
export async function checkPatchFile(file: string, format: PatchFormat): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR'))
      throw new UnderstudyError('PATCH_FILE_NOT_FOUND', `There is no file ${file}`, {
        details: { file },
      });
    throw error;
  }
  if (!stat.isFile())
    throw new UnderstudyError(
      'PATCH_FILE_INVALID',
      `${file} is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}`,
      {
        hint: 'Give the patch file itself (an archive patch is one tar file, not a directory).',
        details: { file, format },
      },
    );
  if (stat.size === 0)
    throw new UnderstudyError('PATCH_FILE_INVALID', `${file} is empty`, {
      hint: 'Check that the file was written completely.',
      details: { file, format },
    });
  switch (format) {
    case 'diff':
    case 'script': {
      if (stat.size > textLimitBytes)
        throw invalid(
          file,
          format,
          `it is ${stat.size} bytes, more than a ${format} can plausibly be`,
          'Use an archive or deb patch for large changes.',
        );
      const data = await fs.readFile(file);
      if (format === 'diff') checkDiff(file, data);
      else checkScript(file, data);
      return;
    }
    case 'archive':
      return checkArchive(file);
    case 'deb':
      return checkDeb(file);
  }
}
