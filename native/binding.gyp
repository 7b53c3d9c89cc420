{
  "targets": [
    {
      "target_name": "rp_ziggurat",
      "sources": ["ziggurat.c"],
      "cflags": ["-O3", "-std=c99"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3"] }
    }
  ]
}
