{
  "variables": {
    "sanitize%": "<!(node -p \"process.env.HYVE_SANITIZE === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "hyve",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native', { recursive: true }).filter(f => f.endsWith('.cc')).map(f => 'native/' + f).sort().join(' ')\")"
      ],
      "include_dirs": [
        "native",
        "<!@(node -p \"require('node-addon-api').include\")"
      ],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8",
                  "HYVE_VERSION=<!(node -p \"JSON.stringify(require('./package.json').version)\")"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Werror", "-fexceptions", "-mcx16"],
      "libraries": ["-lZydis", "-lz", "-llzma", "-lzstd", "-llz4", "-lbz2", "-lpthread"],
      "conditions": [
        ["sanitize==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
