"""The frame grid every part agrees on: 25 fps video, 16 kHz conditioning audio, 640 samples a frame."""

import math

FPS = 25  # MultiTalk's frame rate
TRACK_SAMPLE_RATE = 16_000  # conditioning audio (wav2vec2)
SAMPLES_PER_FRAME = TRACK_SAMPLE_RATE // FPS  # 640
DELIVERY_SAMPLE_RATE = 48_000  # the mix and the delivered audio
AAC_PACKET = 1024  # samples per AAC packet of the delivered audio
# A scene with a tail lasts a multiple of this many frames (8: 0.32 s, 15,360 samples at 48 kHz), the least that is
# also a whole number of AAC packets: scenes' encoded audio then joins with no re-encode (media/scene_audio.py).
SCENE_FRAME_MULTIPLE = AAC_PACKET // math.gcd(AAC_PACKET, DELIVERY_SAMPLE_RATE // FPS)
