"""Media helpers without ComfyUI: reading images / audio / video, writing H.264 + AAC mp4 files with PyAV,
measuring the audio-video offset of a clip, and preparing frames for the video VAE.

Modules are imported on their own (``from comfyui_avgen.media.video_io import write_mp4``) so that using one
does not load the others' dependencies.
"""
