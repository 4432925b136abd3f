// The nn layer in one include: modules, layers, networks, initialization, optimizers, gradient
// clipping, learning-rate schedules, checkpoints and the training progress display.
#pragma once

#include "nn/activation.hpp"
#include "nn/batchnorm2d.hpp"
#include "nn/checkpoint.hpp"
#include "nn/clip.hpp"
#include "nn/conv2d.hpp"
#include "nn/init.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/module.hpp"
#include "nn/optimizer.hpp"
#include "nn/progress.hpp"
#include "nn/resnet.hpp"
#include "nn/schedule.hpp"
#include "nn/sequential.hpp"
#include "nn/weight_norm.hpp"
