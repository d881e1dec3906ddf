"""The frame grid every part agrees on: 25 fps video, 16 kHz conditioning audio, 640 samples a frame."""

FPS = 25  # MultiTalk's frame rate
TRACK_SAMPLE_RATE = 16_000  # conditioning audio (wav2vec2)
SAMPLES_PER_FRAME = TRACK_SAMPLE_RATE // FPS  # 640
