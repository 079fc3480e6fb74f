# The hotbackup addon (native/addon): parallel CRC32C of files, InnoDB page checks and in-process
# control of the shim. Built by `npm install` (scripts/build.mjs runs node-gyp-build) into
# build/Release/hotbackup_addon.node and loaded by src/addon.ts with node-gyp-build.
# CRC32C comes from the shim's own implementation (native/shim/src/crc32c.cc), compiled here in
# place, so the manifest and verify can never disagree about what a checksum is.
{
  'targets': [
    {
      'target_name': 'hotbackup_addon',
      'sources': [
        'native/addon/src/addon.cc',
        'native/addon/src/innodb.cc',
        'native/addon/src/scan.cc',
        'native/addon/src/mapped_read.cc',
        'native/addon/src/control.cc',
        'native/shim/src/crc32c.cc',
      ],
      'include_dirs': ['native/shim/src', 'native/shim/include'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8', '_GNU_SOURCE'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++1y', '-std=gnu++14'],
      'cflags_cc': ['-std=c++17', '-O2', '-fexceptions', '-fvisibility=hidden', '-fvisibility-inlines-hidden',
                    '-fstack-protector-strong', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'ldflags': ['-Wl,-Bsymbolic', '-Wl,--exclude-libs,ALL', '-pthread'],
      'libraries': ['-ldl'],
    },
  ],
}
