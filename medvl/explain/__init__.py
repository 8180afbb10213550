"""Why a sentence was written: attention maps, Grad-CAM, occlusion, and overlays."""
