"""Runner for `ancestral_step` cases (one ancestral Euler step, then the denoise-mask blend the loop applies)."""
from comfyui_avgen.models.sampling.ancestral import ancestral_euler_step
from comfyui_avgen.models.sampling.sampler import blend_with_clean


def run_ancestral_step(case):
    x, a = case.inputs(), case.args
    i = a["step_index"]
    sample = ancestral_euler_step(x["sample"], x["denoised"], x["sigmas"][i], x["sigmas"][i + 1], x["noise"],
                                  eta=a["eta"], s_noise=a["s_noise"])
    return {"sample": sample, "sample_masked": blend_with_clean(sample, x["denoise_mask"], x["clean_latent"])}


RUNNERS = {"ancestral_step": run_ancestral_step}
